"""Recording is robust and cheap: no event lost with its request, no request lost to logging, secrets never shipped."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import path

from audit import events, metrics, services
from audit.models import ChainHead, Event
from audit.services import REDACTED, event_record, scrub
from idp import urls as idp_urls

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6MTc2NzIyNTYwMH0.c2lnbmF0dXJlLWJ5dGVz"
SECRETS = ("hunter2-password", "client-secret-value", "refresh-token-value", "the-code-value", "verifier-value",
           "Basic b3JkZXJzOnNlY3JldA==", "session-cookie-value", JWT)


def _record_then_fail(request):
    event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, request=request, username="alice",
                 reason="bad_password")
    raise RuntimeError("the view broke after recording")


def _record_and_answer(request):
    event_record(type=events.LOGOUT, outcome=events.SUCCESS, request=request, username="alice")
    return HttpResponse("done")


# The IdP's own routes stay: error pages link to them.
urlpatterns = [path("record-then-fail/", _record_then_fail), path("record-and-answer/", _record_and_answer),
               *idp_urls.urlpatterns]


def _audit_handler() -> logging.StreamHandler:
    """The handler settings.LOGGING names audit_stdout: one JSON line per event on standard output."""
    return next(h for h in logging.getLogger("audit.events").handlers if h.name == "audit_stdout")


class _CurrentStdout:
    """Whatever sys.stdout is when written to: pytest swaps it between a test's phases."""

    def write(self, text):
        return sys.stdout.write(text)

    def flush(self):
        sys.stdout.flush()


@pytest.fixture
def audit_stdout(capfd):
    """The audit handler writing to this test's standard output (it holds the stream it was configured with,
    which under pytest is pytest's own capture file)."""
    handler = _audit_handler()
    previous = handler.setStream(_CurrentStdout())
    yield capfd
    handler.setStream(previous)


def _head():
    head = ChainHead.objects.get(pk=1)
    return head.last_seq, head.last_hash


# --- Cost. ------------------------------------------------------------------------------------------------------

# Storing an event, as counted inside a test's transaction (see the first test): on PostgreSQL the head moves in
# the statement that appends the event (audit/services.py), one round trip fewer.
STORE = 4 if connection.vendor == "postgresql" else 5
SAVEPOINT = 2  # a detector's savepoint and its release: only inside a caller's transaction, as in every test


def test_a_success_event_costs_three_statements_and_no_detector_query(db, django_assert_num_queries):
    # Lock the chain head, insert the event, move the head; the savepoint pair exists only because the test runs
    # inside a transaction (in autocommit it is BEGIN/COMMIT). No detector reads anything for success events.
    with django_assert_num_queries(STORE) as captured:
        event = event_record(type=events.LOGIN_SUCCEEDED, outcome=events.SUCCESS, username="alice")

    assert event is not None
    expected = ["SAVEPOINT", "SELECT", "WITH", "RELEASE"] if connection.vendor == "postgresql" else [
        "SAVEPOINT", "SELECT", "INSERT", "UPDATE", "RELEASE"]
    assert [q["sql"].split()[0] for q in captured.captured_queries] == expected


def test_a_failed_login_below_every_threshold_adds_one_bounded_count_per_question(db, django_assert_num_queries):
    # Three questions about login.failed: failures of the account, IPs of the account, accounts from the IP. The
    # two detectors each run in a savepoint here only because the test holds a transaction open.
    with django_assert_num_queries(STORE + (SAVEPOINT + 2) + (SAVEPOINT + 1)) as captured:
        event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, request=RequestFactory().post("/login/"),
                     username="alice", reason="bad_password")

    counts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    assert len(counts) == 3
    assert all("LIMIT" in sql for sql in counts)  # each reads at most `threshold` rows, however long the attack


def test_a_long_attack_costs_each_further_failure_the_same_queries(db, settings, django_assert_num_queries):
    settings.IDP_ALERT_BRUTE_FORCE_FAILURES = 3
    request = RequestFactory().post("/login/")
    for _ in range(5):  # the alert is raised at the third; the fourth and fifth only find it
        event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, request=request, username="alice")

    # As below the threshold, plus one look for the alert already raised in this window.
    with django_assert_num_queries(STORE + (SAVEPOINT + 2 + 1) + (SAVEPOINT + 1)):
        event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, request=request, username="alice")
    assert Event.objects.filter(type=events.ALERT_BRUTE_FORCE).count() == 1


# --- The database refuses the event. ------------------------------------------------------------------------------


def test_an_event_the_database_refuses_is_still_shipped_and_never_raises(db, audit_stdout, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "_link", refuse)  # inside the store's transaction, on either database
    head_before = _head()
    unstored_before = metrics.UNSTORED._value.get()

    result = event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, username="alice", reason="bad_password")

    assert result is None
    assert Event.objects.count() == 0
    assert _head() == head_before
    [line] = audit_stdout.readouterr().out.splitlines()
    shipped = json.loads(line)
    assert (shipped["event"], shipped["stored"], shipped["seq"]) == ("login.failed", False, None)
    assert metrics.UNSTORED._value.get() == unstored_before + 1


def test_an_event_recorded_inside_a_broken_transaction_is_shipped_not_raised(db, audit_stdout):
    with transaction.atomic():
        try:
            with transaction.atomic(savepoint=False):
                ChainHead.objects.create(pk=1, last_hash="x", anchor_hash="x")  # the head already exists
        except IntegrityError:
            pass  # the caller swallowed it; its transaction can run no more queries

        result = event_record(type=events.TOKEN_FAILED, outcome=events.FAILURE, client_id="svc",
                              reason="invalid_client")
        transaction.set_rollback(True)

    assert result is None
    shipped = json.loads(audit_stdout.readouterr().out.splitlines()[-1])
    assert (shipped["event"], shipped["stored"]) == ("token.failed", False)


def test_a_malformed_call_is_logged_and_never_raises(db, caplog):
    result = event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, user=object())

    assert result is None
    assert Event.objects.count() == 0
    assert "could not be built" in caplog.text


def test_the_json_line_reaches_standard_output_when_the_database_has_no_tables(tmp_path):
    # A separate process with a database that was never migrated: the store fails, the log line must not.
    script = (
        "import django; django.setup()\n"
        "from audit import events\nfrom audit.services import event_record\n"
        "result = event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, username='alice',"
        " reason='bad_password', detail={'password': 'hunter2-password'})\n"
        "assert result is None\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "idp.settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    shipped = json.loads(line)
    assert (shipped["event"], shipped["stored"], shipped["detail"]) == ("login.failed", False, {"password": REDACTED})
    assert "hunter2-password" not in done.stdout + done.stderr
    assert "could not be stored" in done.stderr


def test_a_database_flushed_of_its_chain_head_starts_a_fresh_chain(db):
    ChainHead.objects.all().delete()

    event = event_record(type=events.LOGOUT, outcome=events.SUCCESS, username="alice")

    assert (event.seq, event.prev_hash) == (1, "0" * 64)
    assert _head() == (1, event.hash)


def test_a_lost_chain_head_with_events_left_writes_nothing_rather_than_fork_the_chain(db):
    first = event_record(type=events.LOGOUT, outcome=events.SUCCESS, username="alice")
    ChainHead.objects.all().delete()

    assert event_record(type=events.LOGOUT, outcome=events.SUCCESS, username="bob") is None

    assert list(Event.objects.values_list("seq", flat=True)) == [first.seq]
    assert not ChainHead.objects.exists()


# --- The request fails, or the logging does. ------------------------------------------------------------------


@pytest.mark.urls("tests.audit.test_recording")
def test_an_event_recorded_before_the_request_failed_is_kept(client, transactional_db):
    # No transaction spans the request (autocommit, ATOMIC_REQUESTS off), so the view's exception undoes nothing.
    client.raise_request_exception = False
    response = client.get("/record-then-fail/")

    assert response.status_code == 500
    event = Event.objects.get(type=events.LOGIN_FAILED)
    assert (event.username, event.reason, event.ip) == ("alice", "bad_password", "127.0.0.1")


@pytest.mark.urls("tests.audit.test_recording")
def test_a_broken_audit_store_does_not_turn_the_request_into_a_500(client, db, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(services, "_link", refuse)
    response = client.get("/record-and-answer/")

    assert response.status_code == 200
    assert Event.objects.count() == 0


@pytest.mark.urls("tests.audit.test_recording")
def test_a_broken_log_stream_does_not_turn_the_request_into_a_500(client, db, monkeypatch):
    class BrokenPipe:
        def write(self, text):
            raise BrokenPipeError("standard output is closed")

        def flush(self):
            raise BrokenPipeError("standard output is closed")

    handler = _audit_handler()
    previous = handler.setStream(BrokenPipe())
    monkeypatch.setattr(logging, "raiseExceptions", False)  # as in production: handler errors are not printed
    try:
        response = client.get("/record-and-answer/")
    finally:
        handler.stream = previous  # setStream would flush the broken stream first

    assert response.status_code == 200
    assert Event.objects.filter(type=events.LOGOUT).count() == 1


@pytest.mark.urls("tests.audit.test_recording")
def test_a_failing_log_call_does_not_turn_the_request_into_a_500(client, db, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise ValueError("a formatter broke")

    monkeypatch.setattr(logging.getLogger("audit.events"), "info", explode)
    response = client.get("/record-and-answer/")

    assert response.status_code == 200
    assert Event.objects.filter(type=events.LOGOUT).count() == 1
    assert "could not be written to the log" in caplog.text


# --- What is shipped. ----------------------------------------------------------------------------------------


def test_each_event_is_one_json_object_per_line_without_secrets(db, audit_stdout):
    detail = {
        "password": SECRETS[0],
        "client_secret": SECRETS[1],
        "nested": {"refresh_token": SECRETS[2], "jti": "4f1c2a"},
        "code": SECRETS[3],
        "code_verifier": SECRETS[4],
        "Authorization": SECRETS[5],
        "cookies": [{"sessionid_cookie": SECRETS[6]}],
        "note": f"Bearer {JWT} was refused\nsecond line",
        "token_type_hint": "refresh_token",
    }
    event_record(type=events.TOKEN_FAILED, outcome=events.FAILURE, client_id="svc", reason="invalid_grant",
                 detail=detail)
    event_record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, client_id="svc",
                 detail={"grant_type": "client_credentials", "access_token": JWT})

    out = audit_stdout.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["detail"]["nested"] == {"refresh_token": REDACTED, "jti": "4f1c2a"}
    assert first["detail"]["note"] == f"Bearer {REDACTED} was refused\nsecond line"
    assert first["detail"]["token_type_hint"] == "refresh_token"
    assert second["detail"] == {"grant_type": "client_credentials", "access_token": REDACTED}
    assert all(secret not in out for secret in SECRETS)
    stored = Event.objects.get(type=events.TOKEN_FAILED)
    assert all(secret not in json.dumps(stored.detail) for secret in SECRETS)


def test_scrub_masks_secret_keys_and_jwt_shaped_strings():
    scrubbed = scrub({
        "Password": "x", "new_password1": "x", "client_secret": "x", "id_token_hint": "x", "code": "x",
        "client_assertion": "x", "HTTP_AUTHORIZATION": "x", "credentials": ["x"], "csrf_cookie": "x",
        "token_family": "fam-1", "token_type": "Bearer", "requested_token_type": "urn:x", "jti": "j-1",
        "hint": JWT, "list": [JWT, "plain"], "embedded": f"sent {JWT}.", "code_challenge_method": "S256",
        "count": 3, "ok": True, "none": None, "when": object, "refresh_tokens_revoked": 2,
    })

    assert {k for k, v in scrubbed.items() if v == REDACTED} == {
        "Password", "new_password1", "client_secret", "id_token_hint", "code", "client_assertion",
        "HTTP_AUTHORIZATION", "credentials", "csrf_cookie", "hint",
    }
    assert scrubbed["list"] == [REDACTED, "plain"]
    assert scrubbed["embedded"] == f"sent {REDACTED}."
    assert (scrubbed["token_family"], scrubbed["token_type"], scrubbed["jti"]) == ("fam-1", "Bearer", "j-1")
    assert scrubbed["code_challenge_method"] == "S256"
    assert scrubbed["refresh_tokens_revoked"] == 2  # a count about tokens is not a token
    assert (scrubbed["count"], scrubbed["ok"], scrubbed["none"]) == (3, True, None)
    assert scrubbed["when"] == str(object)


def test_scrub_cuts_long_strings():
    assert scrub({"note": "a" * 5000}) == {"note": "a" * 1000}


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_an_event_of_its_own_commits_without_waiting_for_the_disk(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is a PostgreSQL setting")
    with CaptureQueriesContext(connection) as captured:
        event_record(type=events.LOGIN_SUCCEEDED, outcome=events.SUCCESS, username="alice")
    assert any(q["sql"].startswith("SET LOCAL synchronous_commit TO OFF;") for q in captured.captured_queries)

    settings.IDP_AUDIT_DURABLE_COMMIT = True
    with CaptureQueriesContext(connection) as captured:
        event_record(type=events.LOGIN_SUCCEEDED, outcome=events.SUCCESS, username="alice")
    assert not any("synchronous_commit" in q["sql"] for q in captured.captured_queries)
