"""Detectors: each attack raises one alert per window and key, saying what it saw; below threshold, none."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import detectors, events
from audit.models import Event
from audit.services import _alert_record, event_record

WINDOW = 600


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.IDP_ALERT_WINDOW_SECONDS = WINDOW
    settings.IDP_ALERT_BRUTE_FORCE_FAILURES = 3
    settings.IDP_ALERT_SPRAYING_ACCOUNTS = 3
    settings.IDP_ALERT_STUFFING_IPS = 3
    settings.IDP_ALERT_VALIDATION_FAILURES = 3
    return settings


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    """Every timezone.now() in the test reads this clock (events and alerts are stamped with it)."""
    fixed = Clock()
    monkeypatch.setattr(timezone, "now", lambda: fixed.now)
    return fixed


def _request(ip: str):
    return RequestFactory().post("/login/", REMOTE_ADDR=ip, HTTP_USER_AGENT="attack-tool/1.0")


def failed_login(username: str, ip: str = "192.0.2.10", reason: str = "bad_password"):
    return event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, request=_request(ip), username=username,
                        reason=reason)


def alerts(type: str | None = None):
    found = Event.objects.filter(outcome=events.ALERT)
    return list(found.filter(type=type) if type else found)


# --- Brute force: many failures for one account. ------------------------------------------------------------


def test_brute_force_against_one_account_raises_one_alert_naming_what_was_seen(db, clock):
    for _ in range(3):
        failed_login("alice")
        clock.advance(10)

    [alert] = alerts()
    assert alert.type == events.ALERT_BRUTE_FORCE
    assert alert.outcome == events.ALERT
    assert (alert.username, alert.reason) == ("alice", "account")
    assert alert.detail["failures"] == 3
    assert alert.detail["threshold"] == 3
    assert alert.detail["window_seconds"] == WINDOW
    assert alert.detail["ips"] == ["192.0.2.10"]
    assert alert.detail["reasons"] == [{"reason": "bad_password", "count": 3}]
    assert alert.detail["alert_key"] == "account:alice"
    assert alert.detail["first_seen"] == "2026-03-01T12:00:00+00:00"


def test_brute_force_that_goes_on_in_the_same_window_raises_no_second_alert(db, clock):
    for _ in range(12):
        failed_login("alice")
        clock.advance(30)

    assert len(alerts(events.ALERT_BRUTE_FORCE)) == 1
    assert Event.objects.filter(type=events.LOGIN_FAILED).count() == 12


def test_brute_force_against_another_account_raises_its_own_alert(db, clock):
    for _ in range(3):
        failed_login("alice")
        failed_login("bob", ip="192.0.2.11")

    assert sorted(a.username for a in alerts(events.ALERT_BRUTE_FORCE)) == ["alice", "bob"]


def test_failures_below_the_brute_force_threshold_raise_nothing(db, clock):
    failed_login("alice")
    failed_login("alice", reason="locked")

    assert alerts() == []


def test_failures_older_than_the_window_do_not_count_towards_brute_force(db, clock):
    failed_login("alice")
    failed_login("alice")
    clock.advance(WINDOW + 1)
    failed_login("alice")
    failed_login("alice")

    assert alerts() == []


def test_brute_force_that_lasts_past_the_window_raises_one_alert_per_window(db, clock):
    for _ in range(3):
        failed_login("alice")
    clock.advance(WINDOW + 1)
    for _ in range(3):
        failed_login("alice")

    assert len(alerts(events.ALERT_BRUTE_FORCE)) == 2


def test_a_threshold_of_zero_turns_the_brute_force_detector_off(db, clock, thresholds):
    thresholds.IDP_ALERT_BRUTE_FORCE_FAILURES = 0
    for _ in range(5):
        failed_login("alice")

    assert alerts() == []


def test_brute_force_through_the_login_page_raises_an_alert(client, make_user, clock):
    make_user(username="alice")
    for _ in range(3):
        response = client.post("/login/", {"username": "alice", "password": "not-the-password-at-all"},
                               REMOTE_ADDR="198.51.100.7")
        assert response.status_code == 200

    [alert] = alerts(events.ALERT_BRUTE_FORCE)
    assert alert.username == "alice"
    assert alert.user_id is not None
    assert alert.detail["ips"] == ["198.51.100.7"]
    assert Event.objects.filter(type=events.LOGIN_FAILED, username="alice", reason="bad_password").count() == 3


# --- Password spraying: one IP failing against many accounts. ---------------------------------------------------


def test_password_spraying_from_one_ip_raises_one_alert_naming_the_accounts(db, clock):
    for name in ("alice", "bob", "carol"):
        failed_login(name, ip="203.0.113.9", reason="unknown_user")

    [alert] = alerts()
    assert alert.type == events.ALERT_PASSWORD_SPRAYING
    assert (alert.ip, alert.reason) == ("203.0.113.9", "ip")
    assert alert.detail["distinct_accounts"] == 3
    assert alert.detail["accounts"] == ["alice", "bob", "carol"]
    assert alert.detail["alert_key"] == "ip:203.0.113.9"


def test_password_spraying_that_goes_on_in_the_same_window_raises_no_second_alert(db, clock):
    for n in range(10):
        failed_login(f"user{n}", ip="203.0.113.9")
        clock.advance(20)

    assert len(alerts(events.ALERT_PASSWORD_SPRAYING)) == 1


def test_password_spraying_from_another_ip_raises_its_own_alert(db, clock):
    for name in ("alice", "bob", "carol"):
        failed_login(name, ip="203.0.113.9")
        failed_login(name, ip="2001:db8::5")

    assert sorted(a.ip for a in alerts(events.ALERT_PASSWORD_SPRAYING)) == ["2001:db8::5", "203.0.113.9"]


def test_one_account_typed_in_different_cases_is_not_password_spraying(db, clock):
    for name in ("alice", "Alice", "ALICE"):
        failed_login(name, ip="203.0.113.9", reason="unknown_user")

    assert alerts(events.ALERT_PASSWORD_SPRAYING) == []


def test_accounts_tried_before_the_window_do_not_count_towards_password_spraying(db, clock):
    failed_login("alice", ip="203.0.113.9")
    failed_login("bob", ip="203.0.113.9")
    clock.advance(WINDOW + 1)
    failed_login("carol", ip="203.0.113.9")
    failed_login("dave", ip="203.0.113.9")

    assert alerts() == []


# --- Credential stuffing: one account failing from many IPs. ----------------------------------------------------


def test_credential_stuffing_from_many_ips_raises_one_alert_naming_the_ips(db, clock, thresholds):
    thresholds.IDP_ALERT_BRUTE_FORCE_FAILURES = 100
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        failed_login("alice", ip=ip)

    [alert] = alerts()
    assert alert.type == events.ALERT_CREDENTIAL_STUFFING
    assert (alert.username, alert.reason) == ("alice", "account")
    assert alert.detail["distinct_ips"] == 3
    assert alert.detail["ips"] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


def test_credential_stuffing_that_goes_on_in_the_same_window_raises_no_second_alert(db, clock, thresholds):
    thresholds.IDP_ALERT_BRUTE_FORCE_FAILURES = 100
    for n in range(1, 10):
        failed_login("alice", ip=f"192.0.2.{n}")

    assert len(alerts(events.ALERT_CREDENTIAL_STUFFING)) == 1


def test_credential_stuffing_against_another_account_raises_its_own_alert(db, clock, thresholds):
    thresholds.IDP_ALERT_BRUTE_FORCE_FAILURES = 100
    for n in range(1, 4):
        failed_login("alice", ip=f"192.0.2.{n}")
        failed_login("bob", ip=f"198.51.100.{n}")

    assert sorted(a.username for a in alerts(events.ALERT_CREDENTIAL_STUFFING)) == ["alice", "bob"]


def test_failures_from_one_ip_are_not_credential_stuffing(db, clock):
    for _ in range(5):
        failed_login("alice", ip="192.0.2.1")

    assert alerts(events.ALERT_CREDENTIAL_STUFFING) == []


def test_ips_seen_before_the_window_do_not_count_towards_credential_stuffing(db, clock):
    failed_login("alice", ip="192.0.2.1")
    failed_login("alice", ip="192.0.2.2")
    clock.advance(WINDOW + 1)
    failed_login("alice", ip="192.0.2.3")

    assert alerts() == []


# --- Refresh-token reuse: a rotated refresh token presented again. ----------------------------------------------


def refresh_reused(family: str | None = "fam-1", client_id: str = "orders-web", username: str = "alice"):
    detail = {"token_family": family} if family else {}
    return event_record(type=events.TOKEN_REFRESH_REUSED, outcome=events.FAILURE, request=_request("192.0.2.50"),
                        client_id=client_id, username=username, reason="refresh_reused", detail=detail)


def test_a_reused_refresh_token_raises_one_alert_for_its_family(db, clock):
    refresh_reused()

    [alert] = alerts()
    assert alert.type == events.ALERT_REFRESH_TOKEN_REUSE
    assert (alert.client_id, alert.username, alert.ip) == ("orders-web", "alice", "192.0.2.50")
    assert alert.reason == "token_family"
    assert alert.detail["token_family"] == "fam-1"
    assert alert.detail["failures"] == 1


def test_the_same_family_reused_again_in_the_window_raises_no_second_alert(db, clock):
    refresh_reused()
    clock.advance(60)
    refresh_reused()

    assert len(alerts()) == 1


def test_another_reused_family_raises_its_own_alert(db, clock):
    refresh_reused("fam-1")
    refresh_reused("fam-2")

    assert sorted(a.detail["token_family"] for a in alerts()) == ["fam-1", "fam-2"]


def test_a_reuse_without_a_family_is_keyed_by_client_and_account(db, clock):
    refresh_reused(None)
    refresh_reused(None)
    refresh_reused(None, username="bob")

    assert sorted(a.detail["alert_key"] for a in alerts()) == [
        "client:orders-web|account:alice", "client:orders-web|account:bob"
    ]


def test_a_reuse_after_the_window_raises_a_new_alert(db, clock):
    refresh_reused()
    clock.advance(WINDOW + 1)
    refresh_reused()

    assert [a.detail["failures"] for a in alerts()] == [1, 1]


def test_a_successful_refresh_raises_nothing(db, clock):
    event_record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, client_id="orders-web",
                 detail={"grant_type": "refresh_token", "token_family": "fam-1"})

    assert alerts() == []


# --- Token validation bursts: from one client or one IP. --------------------------------------------------------


def token_failure(*, client_id: str = "", ip: str = "192.0.2.80", type: str = events.TOKEN_REJECTED,
                  reason: str = "bad_signature"):
    return event_record(type=type, outcome=events.FAILURE, request=_request(ip), client_id=client_id, reason=reason)


def test_a_burst_of_rejected_tokens_from_one_client_raises_one_alert(db, clock):
    token_failure(client_id="svc", ip="192.0.2.81", reason="expired")
    token_failure(client_id="svc", ip="192.0.2.82", reason="bad_signature")
    token_failure(client_id="svc", ip="192.0.2.83", type=events.TOKEN_FAILED, reason="invalid_client")

    [alert] = alerts()
    assert alert.type == events.ALERT_TOKEN_VALIDATION_BURST
    assert (alert.client_id, alert.reason) == ("svc", "client")
    assert alert.detail["failures"] == 3
    assert alert.detail["reasons"] == [
        {"reason": "bad_signature", "count": 1}, {"reason": "expired", "count": 1},
        {"reason": "invalid_client", "count": 1},
    ]
    assert alert.detail["ips"] == ["192.0.2.81", "192.0.2.82", "192.0.2.83"]


def test_a_burst_of_failures_from_one_ip_raises_one_alert(db, clock):
    for n in range(3):
        token_failure(client_id=f"guess-{n}", ip="203.0.113.20", type=events.TOKEN_FAILED, reason="invalid_client")

    [alert] = alerts()
    assert (alert.ip, alert.reason) == ("203.0.113.20", "ip")
    assert alert.detail["clients"] == ["guess-0", "guess-1", "guess-2"]


def test_a_burst_that_goes_on_in_the_same_window_raises_no_second_alert(db, clock):
    for n in range(10):
        token_failure(ip=f"192.0.2.{n + 1}", client_id="svc")

    assert len(alerts()) == 1


def test_a_burst_that_goes_on_after_its_alert_costs_no_detector_query(db, clock, django_capture_on_commit_callbacks):
    # A client polling with an expired token, or a flood of forged ones from one address, is recorded event by event;
    # once this process raised the alert, the detector does not ask the database again for that key in its window.
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            token_failure(client_id="svc", ip="192.0.2.90")
    assert len(alerts()) == 2  # one for the client, one for the address

    with CaptureQueriesContext(connection) as captured:
        token_failure(client_id="svc", ip="192.0.2.90")
    reads = [query["sql"] for query in captured if query["sql"].lstrip().upper().startswith("SELECT")
             and "audit_event" in query["sql"]]
    assert reads == []
    assert Event.objects.filter(type=events.TOKEN_REJECTED).count() == 4  # the event itself is still stored

    # Past the window the detector asks again, and a burst that is still going raises a new alert.
    clock.advance(WINDOW + 1)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            token_failure(client_id="svc", ip="192.0.2.90")
    assert len(alerts()) == 4


def test_an_alert_rolled_back_with_its_transaction_is_not_remembered(db, clock):
    # The pytest-django transaction never commits, so nothing is remembered and the detector keeps asking.
    for n in range(4):
        token_failure(client_id="svc", ip="192.0.2.91")
    assert not detectors.raised.since(type=events.ALERT_TOKEN_VALIDATION_BURST, key="client:svc",
                                      since=clock.now - timedelta(seconds=WINDOW))
    assert len(alerts()) == 2


def test_the_memory_of_raised_alerts_is_bounded():
    memory = detectors.RaisedAlerts(limit=3)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(5):
        memory.remember(type="alert.x", key=f"ip:{n}", at=start)
    assert [memory.since(type="alert.x", key=f"ip:{n}", since=start - timedelta(1)) for n in range(5)] == [
        False, False, True, True, True]


def test_a_burst_from_another_client_raises_its_own_alert(db, clock):
    for n in range(3):
        token_failure(client_id="svc-a", ip=f"192.0.2.{n + 1}")
        token_failure(client_id="svc-b", ip=f"198.51.100.{n + 1}")

    assert sorted(a.client_id for a in alerts()) == ["svc-a", "svc-b"]


def test_failures_below_the_burst_threshold_raise_nothing(db, clock):
    token_failure(client_id="svc")
    token_failure(client_id="svc")

    assert alerts() == []


def test_failures_before_the_window_do_not_count_towards_a_burst(db, clock):
    token_failure(client_id="svc", ip="192.0.2.1")
    token_failure(client_id="svc", ip="192.0.2.2")
    clock.advance(WINDOW + 1)
    token_failure(client_id="svc", ip="192.0.2.3")

    assert alerts() == []


# --- Recording alerts. ----------------------------------------------------------------------------------------


def test_an_alert_recorded_by_hand_raises_no_further_alert(db, clock, thresholds):
    thresholds.IDP_ALERT_VALIDATION_FAILURES = 1
    event_record(type=events.ALERT_TOKEN_VALIDATION_BURST, outcome=events.ALERT, client_id="svc")

    assert Event.objects.count() == 1


def test_a_second_process_that_saw_the_same_threshold_raises_no_second_alert(db, clock):
    # Two workers can both count past a threshold before either has stored its alert; the duplicate check made
    # under the chain lock keeps the second one out.
    alert = detectors.Alert(type=events.ALERT_BRUTE_FORCE, key="account:alice", reason="account",
                            window_start=clock.now - timedelta(seconds=WINDOW), username="alice")

    assert _alert_record(alert) is not None
    assert _alert_record(alert) is None
    assert len(alerts()) == 1


def test_a_failing_detector_costs_neither_the_event_nor_the_other_detectors(db, clock, monkeypatch, caplog):
    def broken_detector(event):
        # A real SQL error: inside the caller's transaction it must not poison that transaction (PostgreSQL).
        return list(Event.objects.raw("SELECT * FROM no_such_table"))

    watching = detectors._DETECTORS[events.LOGIN_FAILED]
    monkeypatch.setitem(detectors._DETECTORS, events.LOGIN_FAILED, (broken_detector, *watching))
    for _ in range(3):
        assert failed_login("alice") is not None

    assert [a.type for a in alerts()] == [events.ALERT_BRUTE_FORCE]
    assert Event.objects.filter(type=events.LOGIN_FAILED).count() == 3
    assert "audit detector broken_detector failed" in caplog.text


def test_an_alert_another_process_raised_is_remembered_once_found(db, clock, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            token_failure(client_id="svc", ip="192.0.2.92")
    detectors.raised.clear()  # as in another worker, which has not raised it itself

    with django_capture_on_commit_callbacks(execute=True):
        token_failure(client_id="svc", ip="192.0.2.92")  # asks the database once, finds the alerts
    with CaptureQueriesContext(connection) as captured:
        token_failure(client_id="svc", ip="192.0.2.92")
    assert not [query for query in captured if "audit_event" in query["sql"]
                and query["sql"].lstrip().upper().startswith("SELECT")]
    assert len(alerts()) == 2
