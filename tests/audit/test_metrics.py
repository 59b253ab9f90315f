"""/metrics: Prometheus counters fed by recorded events, latency by route, and who may read them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.urls import path
from prometheus_client import REGISTRY

from audit import events
from audit.services import event_record
from idp import urls as idp_urls

METRICS_TOKEN = "m3trics-scrape-token-0123456789abcdef"


def _item(request, pk):
    return HttpResponse(f"item {pk}")


# The IdP's own routes plus one with a parameter, to see which label a parameterised URL gets.
urlpatterns = [path("items/<int:pk>/", _item, name="item"), *idp_urls.urlpatterns]


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def no_token(settings):
    settings.IDP_METRICS_TOKEN = ""
    settings.IDP_TRUST_PROXY = False
    return settings


@pytest.fixture
def with_token(settings):
    settings.IDP_METRICS_TOKEN = METRICS_TOKEN
    return settings


# --- Who may read /metrics. ---------------------------------------------------------------------------------


def test_a_scraper_with_the_bearer_token_reads_the_metrics_from_anywhere(client, db, with_token):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}", REMOTE_ADDR="203.0.113.40")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    assert b"# TYPE idp_logins_total counter" in response.content


@pytest.mark.parametrize("authorization", [f"Bearer {METRICS_TOKEN}x", "Bearer ", f"Basic {METRICS_TOKEN}",
                                           METRICS_TOKEN])
def test_a_wrong_metrics_token_is_refused_with_a_bearer_challenge(client, db, with_token, authorization):
    response = client.get("/metrics", HTTP_AUTHORIZATION=authorization, REMOTE_ADDR="203.0.113.40")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics", error="invalid_token"'
    assert b"idp_" not in response.content


def test_a_missing_metrics_token_is_refused_even_from_loopback(client, db, with_token):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_the_bearer_scheme_name_is_case_insensitive(client, db, with_token):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {METRICS_TOKEN}")

    assert response.status_code == 200


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_without_a_token_loopback_clients_read_the_metrics(client, db, no_token, address):
    response = client.get("/metrics", REMOTE_ADDR=address)

    assert response.status_code == 200
    assert b"idp_logins_total" in response.content


@pytest.mark.parametrize("address", ["203.0.113.40", "10.0.0.5", "2001:db8::1", "::ffff:192.0.2.1", "", "junk"])
def test_without_a_token_remote_clients_are_refused(client, db, no_token, address):
    response = client.get("/metrics", REMOTE_ADDR=address)

    assert response.status_code == 403
    assert b"idp_" not in response.content


def test_a_forged_forwarded_for_header_does_not_make_a_remote_client_local(client, db, no_token):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.40", HTTP_X_FORWARDED_FOR="127.0.0.1")

    assert response.status_code == 403


def test_a_request_forwarded_by_a_local_proxy_is_refused_without_a_token(client, db, no_token):
    # A reverse proxy on the same host makes every client's REMOTE_ADDR loopback; its header gives it away.
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.40")

    assert response.status_code == 403


def test_behind_a_trusted_proxy_the_loopback_default_is_off(client, db, no_token):
    no_token.IDP_TRUST_PROXY = True
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 403


def test_metrics_answer_only_get(client, db, no_token):
    response = client.post("/metrics")

    assert response.status_code == 405


# --- What the counters count. -------------------------------------------------------------------------------


def test_the_counters_follow_the_recorded_events(client, db, no_token):
    before = {
        "logins_ok": value("idp_logins_total", outcome="success"),
        "logins_failed": value("idp_logins_total", outcome="failure"),
        "bad_password": value("idp_login_failures_total", reason="bad_password"),
        "issued_cc": value("idp_tokens_issued_total", grant_type="client_credentials"),
        "expired": value("idp_token_validation_failures_total", reason="expired"),
        "invalid_client": value("idp_token_endpoint_failures_total", reason="invalid_client"),
        "events": value("idp_audit_events_total", type="login.failed", outcome="failure"),
    }
    event_record(type=events.LOGIN_SUCCEEDED, outcome=events.SUCCESS, username="alice")
    event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, username="alice", reason="bad_password")
    event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, username="bob", reason="bad_password")
    event_record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, client_id="svc",
                 detail={"grant_type": "client_credentials"})
    event_record(type=events.TOKEN_REJECTED, outcome=events.FAILURE, client_id="svc", reason="expired")
    event_record(type=events.TOKEN_FAILED, outcome=events.FAILURE, client_id="svc", reason="invalid_client")

    assert value("idp_logins_total", outcome="success") == before["logins_ok"] + 1
    assert value("idp_logins_total", outcome="failure") == before["logins_failed"] + 2
    assert value("idp_login_failures_total", reason="bad_password") == before["bad_password"] + 2
    assert value("idp_tokens_issued_total", grant_type="client_credentials") == before["issued_cc"] + 1
    assert value("idp_token_validation_failures_total", reason="expired") == before["expired"] + 1
    assert value("idp_token_endpoint_failures_total", reason="invalid_client") == before["invalid_client"] + 1
    assert value("idp_audit_events_total", type="login.failed", outcome="failure") == before["events"] + 2
    body = client.get("/metrics").content.decode()
    assert f'idp_logins_total{{outcome="success"}} {value("idp_logins_total", outcome="success")}' in body
    assert 'idp_tokens_issued_total{grant_type="client_credentials"}' in body
    assert 'idp_token_validation_failures_total{reason="expired"}' in body


def test_alerts_are_counted_by_type(client, db, no_token, settings):
    settings.IDP_ALERT_BRUTE_FORCE_FAILURES = 2
    before = value("idp_alerts_total", type=events.ALERT_BRUTE_FORCE)
    for _ in range(4):
        event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, username="carol", reason="bad_password")

    assert value("idp_alerts_total", type=events.ALERT_BRUTE_FORCE) == before + 1
    assert 'idp_alerts_total{type="alert.brute_force"}' in client.get("/metrics").content.decode()


def test_label_values_outside_the_known_sets_are_counted_as_other(client, db, no_token):
    event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, username="dave", reason="x" * 60)
    event_record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, detail={"grant_type": 'evil"}\nfake 1'})
    event_record(type=events.TOKEN_REJECTED, outcome=events.FAILURE, reason="made_up")
    event_record(type="made.up", outcome="weird")

    body = client.get("/metrics").content.decode()
    assert 'idp_login_failures_total{reason="other"}' in body
    assert 'idp_tokens_issued_total{grant_type="other"}' in body
    assert 'idp_token_validation_failures_total{reason="other"}' in body
    assert 'idp_audit_events_total{outcome="other",type="other"}' in body
    assert "x" * 60 not in body
    assert 'type="made.up"' not in body and 'reason="made_up"' not in body and "evil" not in body


# --- Request latency. --------------------------------------------------------------------------------------


def test_a_request_is_timed_under_its_url_pattern_and_method(client, db, no_token):
    before = value("idp_http_request_duration_seconds_count", route="/healthz", method="GET")
    before_2xx = value("idp_http_requests_total", route="/healthz", method="GET", status="2xx")

    assert client.get("/healthz").status_code == 200

    assert value("idp_http_request_duration_seconds_count", route="/healthz", method="GET") == before + 1
    assert value("idp_http_requests_total", route="/healthz", method="GET", status="2xx") == before_2xx + 1
    body = client.get("/metrics").content.decode()
    assert 'idp_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz"}' in body
    assert 'idp_http_request_duration_seconds_sum{method="GET",route="/healthz"}' in body


@pytest.mark.urls("tests.audit.test_metrics")
def test_a_parameterised_url_is_labelled_by_its_pattern_not_its_path(client, db, no_token):
    before = value("idp_http_request_duration_seconds_count", route="/items/<int:pk>/", method="GET")
    client.get("/items/41/")
    client.get("/items/42/")

    assert value("idp_http_request_duration_seconds_count", route="/items/<int:pk>/", method="GET") == before + 2
    assert "/items/42/" not in client.get("/metrics").content.decode()


def test_a_path_that_matches_no_route_is_timed_as_unmatched(client, db, no_token):
    before = value("idp_http_requests_total", route="unmatched", method="GET", status="4xx")

    assert client.get("/wp-admin/setup-config.php").status_code == 404

    assert value("idp_http_requests_total", route="unmatched", method="GET", status="4xx") == before + 1
    assert "wp-admin" not in client.get("/metrics").content.decode()


def test_an_unknown_method_is_counted_as_other(client, db, no_token):
    before = value("idp_http_request_duration_seconds_count", route="/healthz", method="other")

    client.generic("BREW", "/healthz")

    assert value("idp_http_request_duration_seconds_count", route="/healthz", method="other") == before + 1
    assert "BREW" not in client.get("/metrics").content.decode()


def test_scrapes_of_metrics_are_not_timed(client, db, no_token):
    client.get("/metrics")
    client.get("/metrics")

    assert 'route="/metrics"' not in client.get("/metrics").content.decode()


# --- Several worker processes. ------------------------------------------------------------------------------


def test_metrics_are_summed_across_worker_processes(tmp_path):
    # Two "workers" each count one sign-in; a third process serving /metrics reports both.
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "idp.settings", "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    worker = (
        "import django; django.setup()\nfrom audit import metrics\n"
        "metrics.event_observe(type='login.succeeded', outcome='success', reason='', detail={}, stored=True)\n"
        "metrics.request_observe(route='/o/token/', method='POST', status=200, seconds=0.02)\n"
    )
    scrape = "import django; django.setup()\nfrom audit import metrics\nprint(metrics.exposition()[0].decode())\n"
    root = Path(__file__).resolve().parents[2]

    def run(script: str) -> str:
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(worker)
    run(worker)
    body = run(scrape)

    assert 'idp_logins_total{outcome="success"} 2.0' in body
    assert 'idp_http_request_duration_seconds_count{method="POST",route="/o/token/"} 2.0' in body
