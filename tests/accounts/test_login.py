"""The sign-in page: username or email, one answer for every refusal, equal cost, no open redirect, CSRF, sessions."""

import random
import re
import statistics
import time

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.forms import LOGIN_FAILED_MESSAGE
from accounts.models import User
from accounts.redirects import safe_next_path
from audit import events
from audit.models import Event

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def sign_in(client, username, password, *, ip="198.51.100.7", **extra):
    return client.post("/login/", {"username": username, "password": password, **extra}, REMOTE_ADDR=ip)


def page_without_csrf_token(response) -> str:
    return CSRF_FIELD.sub('name="csrfmiddlewaretoken" value=""', response.content.decode())


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


@pytest.mark.django_db
def test_login_page_has_labelled_standard_fields_a_reset_link_and_no_inline_script(client):
    response = client.get("/login/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<label for="id_username">Username or email</label>' in page
    assert '<label for="id_password">Password</label>' in page
    assert re.search(r'<input type="text" name="username" id="id_username" autocomplete="username"', page)
    assert re.search(r'<input type="password" name="password" id="id_password" autocomplete="current-password"', page)
    assert 'href="/password-reset/"' in page
    assert "<script" not in page
    assert "style=" not in page
    assert "http://" not in page and "https://" not in page  # no external assets
    assert 'name="next"' not in page  # nothing to carry on


@pytest.mark.django_db
def test_login_page_is_never_cached(client):
    response = client.get("/login/")
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_sign_in_with_the_username_in_any_case_lands_on_the_default_page(client, make_user, password):
    user = make_user(username="alice")
    response = sign_in(client, "ALICE", password)
    assert response.status_code == 302
    assert response["Location"] == settings.LOGIN_REDIRECT_URL
    assert signed_in_user_id(client) == str(user.pk)
    event = Event.objects.get(type=events.LOGIN_SUCCEEDED)
    assert (event.user_id, event.username, event.ip, event.detail) == (
        user.pk, "alice", "198.51.100.7", {"identifier": "username"})
    assert not Event.objects.filter(type=events.LOGIN_FAILED).exists()


@pytest.mark.django_db
def test_sign_in_with_the_email_address_in_any_case(client, make_user, password):
    user = make_user(username="alice", email="alice@example.com")
    response = sign_in(client, "Alice@Example.COM", password)
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(user.pk)
    assert Event.objects.get(type=events.LOGIN_SUCCEEDED).detail == {"identifier": "email"}


@pytest.mark.django_db
def test_a_username_containing_at_that_is_nobodys_email_still_signs_in(client, make_user, password):
    user = make_user(username="ops@team")
    assert sign_in(client, "ops@team", password).status_code == 302
    assert signed_in_user_id(client) == str(user.pk)


@pytest.mark.django_db
def test_session_fixation_is_stopped_by_rotating_the_session_key_at_sign_in(client, make_user, password):
    make_user(username="alice")
    planted = client.session
    planted["planted"] = True
    planted.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key
    response = sign_in(client, "alice", password)
    assert response.status_code == 302
    new_key = response.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key != planted.session_key
    assert not Session.objects.filter(session_key=planted.session_key).exists()
    assert Session.objects.get(session_key=new_key).get_decoded()["_auth_user_id"]


@pytest.mark.django_db
def test_session_cookie_is_httponly_and_samesite_lax(client, make_user, password):
    make_user(username="alice")
    cookie = sign_in(client, "alice", password).cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] == ""  # http issuer in tests; tests/idp/test_settings.py covers https


@pytest.mark.django_db
def test_cross_site_login_without_a_csrf_token_is_refused_and_creates_no_session(make_user, password):
    user = make_user(username="alice")
    browser = Client(enforce_csrf_checks=True)
    browser.get("/login/")
    response = sign_in(browser, "alice", password)
    assert response.status_code == 403
    assert Session.objects.count() == 0
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    user.refresh_from_db()
    assert user.last_login is None
    assert not Event.objects.filter(type__in=[events.LOGIN_SUCCEEDED, events.LOGIN_FAILED]).exists()


@pytest.mark.django_db
def test_login_with_the_csrf_token_from_the_page_succeeds(make_user, password):
    make_user(username="alice")
    browser = Client(enforce_csrf_checks=True)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get("/login/").content.decode())[1]
    response = sign_in(browser, "alice", password, csrfmiddlewaretoken=token)
    assert response.status_code == 302


OPEN_REDIRECTS = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "http://testserver.evil",
    "http://testserver/account/",  # even our own host: only paths are followed
    "/\t/evil.example",
    " /account/",
    "/account/\nLocation: https://evil.example",
    "evil.example",
]


@pytest.mark.django_db
@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_open_redirect_through_next_lands_on_the_default_page(client, make_user, password, target):
    make_user(username="alice")
    response = sign_in(client, "alice", password, next=target)
    assert response.status_code == 302
    assert response["Location"] == settings.LOGIN_REDIRECT_URL


@pytest.mark.django_db
@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_open_redirect_target_is_not_carried_into_the_login_form(client, target):
    page = client.get("/login/", {"next": target}).content.decode()
    assert 'name="next"' not in page
    assert "evil" not in page


@pytest.mark.django_db
def test_next_path_on_this_idp_is_followed_with_its_query(client, make_user, password):
    make_user(username="alice")
    target = "/o/authorize/?client_id=abc&scope=openid+profile&state=xyz"
    page = client.get("/login/", {"next": target}).content.decode()
    assert 'name="next" value="/o/authorize/?client_id=abc&amp;scope=openid+profile&amp;state=xyz"' in page
    response = sign_in(client, "alice", password, next=target)
    assert response["Location"] == target


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/account/", "/account/"), ("/o/authorize/?a=1&b=%2F%2F", "/o/authorize/?a=1&b=%2F%2F"), ("", None),
     (None, None), ("/" + "a" * 2048, None), ("/\x7f", None), ("///evil.example", None), ("/%0d%0a", "/%0d%0a")],
)
def test_safe_next_path_accepts_only_paths_on_this_idp(value, expected):
    assert safe_next_path(value) == expected


@pytest.mark.django_db
def test_locked_unknown_wrong_password_and_inactive_answers_are_identical(client, make_user, password):
    alice = make_user(username="alice")
    bad_password = sign_in(client, "alice", "not-the-password", ip="192.0.2.1")

    User.objects.filter(pk=alice.pk).update(is_active=False)
    inactive = sign_in(client, "alice", password, ip="192.0.2.2")
    User.objects.filter(pk=alice.pk).update(is_active=True)

    for _ in range(settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT):
        sign_in(client, "alice", "not-the-password", ip="192.0.2.3")
    locked = sign_in(client, "alice", password, ip="192.0.2.3")

    User.objects.filter(pk=alice.pk).delete()
    unknown = sign_in(client, "alice", password, ip="192.0.2.4")

    answers = {"bad_password": bad_password, "inactive": inactive, "locked": locked, "unknown_user": unknown}
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 200)
    bodies = {page_without_csrf_token(r) for r in answers.values()}
    assert len(bodies) == 1
    body = bodies.pop()
    assert LOGIN_FAILED_MESSAGE in body
    for reason in events.LOGIN_FAILURE_REASONS:
        assert reason not in body  # the reason is stored, never shown
    for header in ("Content-Type", "Cache-Control"):
        assert {r[header] for r in answers.values()} == {bad_password[header]}
    assert not any("_auth_user_id" in s.get_decoded() for s in Session.objects.all())
    recorded = {e.ip: e.reason for e in Event.objects.filter(type=events.LOGIN_FAILED, ip__in=[
        "192.0.2.1", "192.0.2.2", "192.0.2.4"])}
    assert recorded == {"192.0.2.1": "bad_password", "192.0.2.2": "inactive", "192.0.2.4": "unknown_user"}
    last_from_locked_ip = Event.objects.filter(type=events.LOGIN_FAILED, ip="192.0.2.3").first()
    assert (last_from_locked_ip.reason, last_from_locked_ip.detail) == ("locked", {"scope": "user_ip"})


@pytest.mark.django_db
def test_failures_are_recorded_with_the_account_name_however_it_was_typed(client, make_user):
    alice = make_user(username="alice", email="alice@example.com")
    sign_in(client, "ALICE@example.com", "wrong")
    event = Event.objects.get(type=events.LOGIN_FAILED)
    assert (event.user_id, event.username, event.reason, event.outcome) == (
        alice.pk, "alice", "bad_password", events.FAILURE)
    sign_in(client, "Nobody", "wrong")
    event = Event.objects.filter(type=events.LOGIN_FAILED).first()
    assert (event.user_id, event.username, event.reason) == (None, "Nobody", "unknown_user")


@pytest.mark.django_db
def test_user_enumeration_by_timing_is_stopped_by_equal_cost_for_every_refusal(client, make_user):
    make_user(username="alice")
    make_user(username="bob")
    for _ in range(settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT):
        sign_in(client, "bob", "not-the-password", ip="192.0.2.99")

    def timed(username, ip):
        started = time.perf_counter()
        response = sign_in(client, username, "not-the-password", ip=ip)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        return elapsed

    samples = {"known": [], "unknown": [], "locked": []}
    probes = {
        # One name each and a fresh IP for every unlocked attempt (so no lock changes the path taken), so that the
        # audit detectors see the same pattern of failures for the known and the unknown name.
        "known": lambda n: timed("alice", f"203.0.113.{n + 1}"),
        "unknown": lambda n: timed("nobody", f"203.0.113.{n + 101}"),
        "locked": lambda n: timed("bob", "192.0.2.99"),
    }
    order = random.Random(4)
    for attempt in range(15):
        for name in order.sample(list(probes), len(probes)):  # interleaved in a shuffled order against drift
            samples[name].append(probes[name](attempt))
    median = {name: statistics.median(times) for name, times in samples.items()}
    # Lenient, because other work on the machine disturbs single answers; the exact check of equal cost is
    # test_every_answer_costs_exactly_one_argon2id_hash_with_the_same_parameters.
    assert 1 / 3 < median["unknown"] / median["known"] < 3, samples
    assert 1 / 3 < median["locked"] / median["known"] < 3, samples
    reasons = Event.objects.filter(type=events.LOGIN_FAILED).values_list("reason", flat=True)
    assert set(reasons) == {"bad_password", "unknown_user", "locked"}


@pytest.fixture
def argon2_work(monkeypatch):
    """Every Argon2 computation made, as (memory KiB, passes, lanes): hashing a new password or verifying one."""
    import argon2
    from argon2 import _password_hasher, low_level

    work = []
    hash_secret, verify_secret = low_level.hash_secret, _password_hasher.verify_secret

    def spy_hash(*args, **kwargs):
        work.append((kwargs["memory_cost"], kwargs["time_cost"], kwargs["parallelism"]))
        return hash_secret(*args, **kwargs)

    def spy_verify(encoded, *args, **kwargs):
        params = argon2.extract_parameters(encoded.decode() if isinstance(encoded, bytes) else encoded)
        work.append((params.memory_cost, params.time_cost, params.parallelism))
        return verify_secret(encoded, *args, **kwargs)

    monkeypatch.setattr(low_level, "hash_secret", spy_hash)
    monkeypatch.setattr(_password_hasher, "verify_secret", spy_verify)
    return work


@pytest.mark.django_db
def test_every_answer_costs_exactly_one_argon2id_hash_with_the_same_parameters(client, make_user, password,
                                                                                argon2_work):
    alice = make_user(username="alice")
    make_user(username="bob")
    for _ in range(settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT):
        sign_in(client, "bob", "not-the-password", ip="192.0.2.50")
    argon2_work.clear()

    def cost(username, typed_password, ip):
        argon2_work.clear()
        sign_in(client, username, typed_password, ip=ip)
        return list(argon2_work)

    one_hash = [(7 * 1024, 5, 1)]
    assert cost("alice", "not-the-password", "192.0.2.51") == one_hash  # bad_password
    assert cost("nobody", "not-the-password", "192.0.2.52") == one_hash  # unknown_user
    assert cost("bob", "not-the-password", "192.0.2.50") == one_hash  # locked
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert cost("alice", password, "192.0.2.53") == one_hash  # inactive
    User.objects.filter(pk=alice.pk).update(is_active=True)
    assert cost("alice", password, "192.0.2.54") == one_hash  # success
    reasons = list(Event.objects.filter(type=events.LOGIN_FAILED, ip__startswith="192.0.2.5").order_by("seq")
                   .values_list("reason", flat=True))
    assert reasons[-4:] == ["bad_password", "unknown_user", "locked", "inactive"]
