"""Brute-force protection: per (username, IP) and per IP locks with growing, always temporary waits; admin clears."""

import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import aauthenticate, authenticate
from django.db import connection, connections
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import LoginThrottle
from accounts.throttling import lock_seconds, login_failure_count, throttle_ip
from audit import events
from audit.models import Event

ATTACKER_IP = "203.0.113.66"
USER_IP = "198.51.100.20"
WRONG = "not-the-password"


def sign_in(client, username, password, *, ip=ATTACKER_IP, path="/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in(response) -> bool:
    return response.status_code == 302


def pair(username="alice", ip=ATTACKER_IP) -> LoginThrottle:
    return LoginThrottle.objects.get(scope=LoginThrottle.SCOPE_USER_IP, username=username, ip=ip)


def ip_counter(ip=ATTACKER_IP) -> LoginThrottle:
    return LoginThrottle.objects.get(scope=LoginThrottle.SCOPE_IP, username="", ip=ip)


def end_locks(**filters) -> None:
    """Let every lock run out, as if its time had passed."""
    LoginThrottle.objects.filter(**filters).update(locked_until=timezone.now() - timedelta(seconds=1))


def fail(client, times, username="alice", ip=ATTACKER_IP) -> None:
    for _ in range(times):
        assert sign_in(client, username, WRONG, ip=ip).status_code == 200


@pytest.mark.django_db
def test_password_guessing_from_one_ip_locks_that_username_and_ip_after_the_limit(client, alice, password):
    limit = settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT
    fail(client, limit - 1)
    assert pair().locked_until is None
    assert not Event.objects.filter(type=events.LOCKOUT_SET).exists()
    fail(client, 1)
    throttle = pair()
    assert throttle.failures == limit
    assert throttle.locked_until - throttle.last_failure_at == timedelta(seconds=settings.IDP_LOGIN_LOCK_BASE_SECONDS)

    response = sign_in(client, "alice", password)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert pair().failures == limit  # a refused attempt is not counted and does not extend the lock
    refusal = Event.objects.filter(type=events.LOGIN_FAILED).first()
    assert (refusal.reason, refusal.detail, refusal.user_id) == ("locked", {"scope": "user_ip"}, alice.pk)
    lockout = Event.objects.get(type=events.LOCKOUT_SET)
    assert (lockout.username, lockout.user_id, lockout.ip, lockout.reason, lockout.outcome) == (
        "alice", alice.pk, ATTACKER_IP, "too_many_failures", events.FAILURE)
    assert lockout.detail == {"scope": "user_ip", "failures": limit, "seconds": settings.IDP_LOGIN_LOCK_BASE_SECONDS}
    assert not Event.objects.filter(type=events.LOGIN_SUCCEEDED).exists()


@pytest.mark.django_db
def test_guessing_by_email_counts_against_the_account_so_switching_spellings_earns_no_fresh_guesses(
        client, alice, password):
    fail(client, settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT, username="Alice@Example.com")
    assert pair("alice").locked_until is not None  # the account's own username, however it was typed
    for spelling in ("alice@example.com", "alice", "ALICE"):
        assert not signed_in(sign_in(client, spelling, password))
        assert Event.objects.filter(type=events.LOGIN_FAILED).first().reason == "locked"


@pytest.mark.django_db
def test_each_lock_after_the_first_lasts_twice_as_long_up_to_the_maximum(client, alice):
    limit = settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT
    fail(client, limit)
    waits = []
    for _ in range(7):
        throttle = pair()
        waits.append((throttle.locked_until - throttle.last_failure_at).total_seconds())
        end_locks()
        fail(client, 1)
    base, cap = settings.IDP_LOGIN_LOCK_BASE_SECONDS, settings.IDP_LOGIN_LOCK_MAX_SECONDS
    assert waits == [min(base * 2**n, cap) for n in range(7)]
    assert waits[1] > waits[0]
    assert waits[-1] == cap
    recorded = [e.detail["seconds"] for e in Event.objects.filter(type=events.LOCKOUT_SET).order_by("seq")]
    assert recorded == [*waits, cap]


def test_lock_length_never_overflows_for_absurd_failure_counts():
    assert lock_seconds(failures=10**9, limit=5) == settings.IDP_LOGIN_LOCK_MAX_SECONDS


@pytest.mark.django_db
def test_lock_expires_and_the_right_password_works_again(client, alice, password):
    fail(client, settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT)
    assert not signed_in(sign_in(client, "alice", password))
    end_locks()
    assert signed_in(sign_in(client, "alice", password))
    assert not LoginThrottle.objects.filter(scope=LoginThrottle.SCOPE_USER_IP).exists()  # success forgets the pair
    assert ip_counter().failures == settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT  # but not the IP's failures
    assert Event.objects.filter(type=events.LOGIN_SUCCEEDED, user=alice).count() == 1
    assert not Event.objects.filter(type=events.LOCKOUT_CLEARED).exists()  # expiry and success are not clearing


@pytest.mark.django_db
def test_failures_older_than_the_window_are_forgotten(client, alice):
    fail(client, settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT)
    long_ago = timezone.now() - timedelta(seconds=settings.IDP_LOGIN_FAILURE_WINDOW_SECONDS + 1)
    LoginThrottle.objects.update(last_failure_at=long_ago, locked_until=long_ago)
    fail(client, 1)
    throttle = pair()
    assert (throttle.failures, throttle.locked_until) == (1, None)
    assert throttle.first_failure_at > long_ago


@pytest.mark.django_db
def test_an_attacker_elsewhere_cannot_lock_the_user_out(client, alice, password):
    fail(client, settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT * 3)
    assert pair().locked_until > timezone.now()
    assert signed_in(sign_in(client, "alice", password, ip=USER_IP))
    assert not LoginThrottle.objects.filter(ip=USER_IP).exists()


@pytest.mark.django_db
def test_password_spraying_from_one_ip_is_throttled(client, alice, password):
    limit = settings.IDP_LOGIN_IP_FAILURE_LIMIT
    for n in range(limit):  # one guess per username stays far below every pair's limit
        fail(client, 1, username=f"user{n}")
    assert ip_counter().failures == limit
    assert ip_counter().locked_until > timezone.now()
    lockout = Event.objects.get(type=events.LOCKOUT_SET)
    assert (lockout.username, lockout.user_id) == ("", None)
    assert lockout.detail == {"scope": "ip", "failures": limit, "seconds": settings.IDP_LOGIN_LOCK_BASE_SECONDS}

    assert not signed_in(sign_in(client, "alice", password))  # even the right password, from the sprayer's IP
    refusal = Event.objects.filter(type=events.LOGIN_FAILED).first()
    assert (refusal.reason, refusal.detail) == ("locked", {"scope": "ip"})
    assert signed_in(sign_in(client, "alice", password, ip=USER_IP))


@pytest.mark.django_db
def test_a_successful_sign_in_does_not_reset_the_ip_counter_of_a_sprayer(client, alice, password):
    fail(client, 3, username="bob")
    assert signed_in(sign_in(client, "alice", password))
    assert ip_counter().failures == 3


@pytest.mark.django_db
def test_ipv6_addresses_of_one_slash_64_share_their_counters(client, alice, password):
    for n in range(settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT):
        fail(client, 1, ip=f"2001:db8:1:2::{n + 1:x}")
    assert pair(ip="2001:db8:1:2::").locked_until is not None
    assert not signed_in(sign_in(client, "alice", password, ip="2001:db8:1:2:ffff::9"))
    assert signed_in(sign_in(client, "alice", password, ip="2001:db8:1:3::1"))
    assert throttle_ip("::ffff:192.0.2.1") == "192.0.2.1"


@pytest.mark.django_db
def test_the_admin_login_is_throttled_too(client, admin_user, password):
    fail(client, settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT, username="root", ip=ATTACKER_IP)
    response = sign_in(client, "root", password, path="/admin/login/")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert Event.objects.filter(type=events.LOGIN_FAILED).first().reason == "locked"
    end_locks()
    assert sign_in(client, "root", password, path="/admin/login/").status_code == 302


@pytest.mark.django_db
def test_failures_at_the_admin_login_count_toward_the_same_lock(client, admin_user, password):
    for _ in range(settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT):
        assert sign_in(client, "root", WRONG, path="/admin/login/").status_code == 200
    assert not signed_in(sign_in(client, "root", password))
    assert Event.objects.filter(type=events.LOGIN_FAILED).first().reason == "locked"


@pytest.mark.django_db
def test_async_authentication_is_throttled_the_same_way(alice, password):
    request = RequestFactory().post("/login/", REMOTE_ADDR=ATTACKER_IP)
    for _ in range(settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT):
        assert async_to_sync(aauthenticate)(request, username="alice", password=WRONG) is None
    assert async_to_sync(aauthenticate)(request, username="alice", password=password) is None
    assert Event.objects.filter(type=events.LOGIN_FAILED).first().reason == "locked"
    assert authenticate(RequestFactory().post("/", REMOTE_ADDR=USER_IP), username="alice", password=password) == alice


@pytest.mark.django_db
def test_authentication_without_a_request_has_no_ip_to_count(alice, password):
    assert authenticate(username="alice", password=WRONG) is None
    assert not LoginThrottle.objects.exists()
    assert Event.objects.get(type=events.LOGIN_FAILED).reason == "bad_password"


@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_each_counted_once(alice):
    if connection.vendor == "sqlite":
        # The in-memory shared-cache test database reports "table is locked" instead of waiting; a file database
        # (the embedded default, IMMEDIATE transactions, 20 s busy timeout) and PostgreSQL wait their turn.
        pytest.skip("needs a database that waits for locks: run with DATABASE_URL=postgres://...")
    workers = 6
    errors = []

    def one_failure():
        try:
            login_failure_count(username="alice", ip=ATTACKER_IP)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one_failure) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert pair().failures == workers
    assert ip_counter().failures == workers
    locks_started = workers - settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT + 1  # the limit-th failure and each after it
    assert Event.objects.filter(type=events.LOCKOUT_SET).count() == locks_started


# --- Administration. -----------------------------------------------------------------------------------


@pytest.fixture
def lockouts(client, alice):
    fail(client, settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT)  # alice locked from ATTACKER_IP
    fail(client, 2, username="bob", ip=USER_IP)  # counting, not locked
    return {t.pk: t for t in LoginThrottle.objects.all()}


@pytest.mark.django_db
def test_admin_lists_lockouts_and_filters_and_searches_them(admin_client, lockouts):
    response = admin_client.get("/admin/accounts/loginthrottle/")
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 4
    locked = admin_client.get("/admin/accounts/loginthrottle/", {"locked": "yes"}).context["cl"].result_list
    assert [(t.scope, t.username) for t in locked] == [("user_ip", "alice")]
    unlocked = admin_client.get("/admin/accounts/loginthrottle/", {"locked": "no"}).context["cl"].result_list
    assert len(unlocked) == 3
    by_scope = admin_client.get("/admin/accounts/loginthrottle/", {"scope__exact": "ip"}).context["cl"].result_list
    assert {t.ip for t in by_scope} == {ATTACKER_IP, USER_IP}
    found = admin_client.get("/admin/accounts/loginthrottle/", {"q": "bob"}).context["cl"].result_list
    assert [t.username for t in found] == ["bob"]
    found = admin_client.get("/admin/accounts/loginthrottle/", {"q": USER_IP}).context["cl"].result_list
    assert {t.scope for t in found} == {"user_ip", "ip"}


@pytest.mark.django_db
def test_admin_clears_selected_lockouts_and_each_clearing_is_recorded(admin_client, admin_user, lockouts, password):
    locked_pair = pair()
    response = admin_client.post("/admin/accounts/loginthrottle/", {
        "action": "clear_lockouts", "_selected_action": [locked_pair.pk, ip_counter().pk]})
    assert response.status_code == 302
    assert not LoginThrottle.objects.filter(ip=ATTACKER_IP).exists()
    assert LoginThrottle.objects.filter(ip=USER_IP).count() == 2  # the others stay
    cleared = Event.objects.filter(type=events.LOCKOUT_CLEARED).order_by("seq")
    assert [(e.user_id, e.reason, e.outcome) for e in cleared] == [(admin_user.pk, "admin", events.SUCCESS)] * 2
    assert sorted((e.detail["scope"], e.detail["username"], e.detail["was_locked"]) for e in cleared) == [
        ("ip", "", False), ("user_ip", "alice", True)]
    assert signed_in(sign_in(admin_client, "alice", password))


@pytest.mark.django_db
def test_admin_cannot_add_or_edit_counters_or_delete_them_unrecorded(admin_client, lockouts):
    throttle = pair()
    assert admin_client.get("/admin/accounts/loginthrottle/add/").status_code == 403
    page = admin_client.get(f"/admin/accounts/loginthrottle/{throttle.pk}/change/")
    assert page.status_code == 200
    assert 'name="failures"' not in page.content.decode()
    response = admin_client.post(f"/admin/accounts/loginthrottle/{throttle.pk}/change/", {"failures": 0})
    assert response.status_code == 403
    assert pair().failures == throttle.failures
    changelist = admin_client.get("/admin/accounts/loginthrottle/").content.decode()
    assert 'value="delete_selected"' not in changelist
    assert 'value="clear_lockouts"' in changelist
    response = admin_client.post(f"/admin/accounts/loginthrottle/{throttle.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert Event.objects.filter(type=events.LOCKOUT_CLEARED).get().detail["username"] == "alice"


@pytest.mark.django_db
def test_lockouts_are_staff_only(client, make_user, lockouts):
    client.force_login(make_user(username="plain"))
    response = client.get("/admin/accounts/loginthrottle/")
    assert response.status_code == 302
    assert LoginThrottle.objects.count() == 4


@pytest.mark.django_db
def test_guessing_without_a_client_address_is_still_throttled(client, alice, password):
    """A deployment on a unix socket gives no REMOTE_ADDR: such attempts share one counter instead of none."""
    fail(client, settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT, ip="")
    assert pair(ip="::").locked_until is not None
    assert not signed_in(sign_in(client, "alice", password, ip=""))
