"""Issue 5's closing scene: three attack runs against a live IdP, each seen as an alert in the admin, in the JSON log
and in /metrics, with the audit chain intact afterwards."""

import json
import logging
import re

import jwt
import pytest
import requests
from django.core.management import call_command
from django.test import Client

from tests.flows.conftest import authorize

pytestmark = pytest.mark.django_db(transaction=True)

ALERTS = ("alert.password_spraying", "alert.token_validation_burst", "alert.refresh_token_reuse")


def _spray_passwords(idp, settings):
    """One IP tries one password against many accounts (accounts need not exist)."""
    session = requests.Session()
    for number in range(settings.IDP_ALERT_SPRAYING_ACCOUNTS + 2):
        page = session.get(f"{idp}/login/", timeout=10)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = session.post(f"{idp}/login/", data={"username": f"victim{number}", "password": "Winter2026!",
                                                        "csrfmiddlewaretoken": csrf},
                                headers={"Referer": f"{idp}/login/"}, timeout=10)
        assert response.status_code == 200  # the same refusal page every time


def _forge_tokens(idp, settings):
    """Tokens signed with the attacker's own key, presented at userinfo."""
    forged = jwt.encode({"iss": idp, "sub": "root", "aud": "x", "exp": 4102444800}, "k" * 32, algorithm="HS256",
                        headers={"typ": "at+jwt", "kid": "made-up"})
    for _ in range(settings.IDP_ALERT_VALIDATION_FAILURES + 2):
        response = requests.get(f"{idp}/o/userinfo/", headers={"Authorization": f"Bearer {forged}"}, timeout=10)
        assert response.status_code == 401


def _replay_stolen_refresh_token(browser, discovery, rp):
    response, oauth, _ = authorize(browser, discovery, rp)
    stolen = oauth.fetch_token(discovery["token_endpoint"], authorization_response=response.headers["Location"],
                               code_verifier="v" * 64)["refresh_token"]
    auth = (rp.client.client_id, rp.client_secret)
    legitimate = requests.post(discovery["token_endpoint"], auth=auth, timeout=10,
                               data={"grant_type": "refresh_token", "refresh_token": stolen})
    assert legitimate.status_code == 200
    replay = requests.post(discovery["token_endpoint"], auth=auth, timeout=10,
                           data={"grant_type": "refresh_token", "refresh_token": stolen})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    rotated = legitimate.json()["refresh_token"]  # the whole family went with the replay
    after = requests.post(discovery["token_endpoint"], auth=auth, timeout=10,
                          data={"grant_type": "refresh_token", "refresh_token": rotated})
    assert after.status_code == 400


def _run_the_attacks(idp, settings, browser, discovery, rp):
    _spray_passwords(idp, settings)
    _forge_tokens(idp, settings)
    _replay_stolen_refresh_token(browser, discovery, rp)


def test_spraying_forging_and_a_stolen_refresh_token_each_raise_an_alert_everywhere_an_operator_looks(
        idp, settings, browser, discovery, rp, admin_user):
    # The lines the stdout handler writes (tests/audit/test_recording.py checks that handler itself).
    log_lines = []
    collector = logging.Handler()
    collector.emit = lambda record: log_lines.append(record.getMessage())
    logging.getLogger("audit.events").addHandler(collector)
    try:
        _run_the_attacks(idp, settings, browser, discovery, rp)
    finally:
        logging.getLogger("audit.events").removeHandler(collector)

    # The admin: the alert list shows each once.
    operator = Client()
    operator.force_login(admin_user)
    listed = operator.get("/admin/audit/event/", {"outcome__exact": "alert"})
    assert listed.status_code == 200
    types = [event.type for event in listed.context["cl"].result_list]
    for alert in ALERTS:
        assert types.count(alert) == 1, types

    # The JSON log: one line per event on standard output, the alerts among them.
    lines = [json.loads(line) for line in log_lines]
    logged = [line["event"] for line in lines if line["outcome"] == "alert"]
    for alert in ALERTS:
        assert logged.count(alert) == 1, logged

    # /metrics, scraped from loopback.
    metrics = requests.get(f"{idp}/metrics", timeout=10).text
    for alert in ALERTS:
        assert re.search(rf'idp_alerts_total\{{type="{re.escape(alert)}"\}} [1-9]', metrics), alert

    # And nothing was lost or altered on the way.
    call_command("audit", "verify")
