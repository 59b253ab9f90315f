"""Changing a password: the current one is required, validators run, other sessions end, guessing is cut short."""

import pytest
from django.contrib.auth import authenticate

from accounts.models import UserSession
from accounts.views.password import PASSWORD_CHANGE_MAX_FAILURES
from audit import events
from audit.models import Event
from tests.accounts.browser_sessions import is_signed_in, session_exists, session_key, sign_in

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-2024"


@pytest.fixture
def laptop(alice, password):
    return sign_in("alice", password, ip="198.51.100.7")


@pytest.fixture
def phone(alice, password):
    return sign_in("alice", password, ip="203.0.113.9")


def change(client, old, new, confirm=None):
    return client.post("/account/password/", {"old_password": old, "new_password1": new,
                                              "new_password2": new if confirm is None else confirm})


def test_password_change_page_needs_a_signed_in_user(client):
    response = client.get("/account/password/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/account/password/"


def test_password_change_page_asks_for_the_current_password_with_labelled_fields(laptop):
    page = laptop.get("/account/password/").content.decode()
    assert '<label for="id_old_password">Current password</label>' in page
    assert 'autocomplete="current-password"' in page
    assert '<label for="id_new_password1">New password</label>' in page
    assert 'autocomplete="new-password"' in page
    assert "<script" not in page and "style=" not in page


def test_a_wrong_current_password_is_refused_and_nothing_changes(alice, password, laptop, phone):
    response = change(laptop, "not-my-password-at-all", NEW_PASSWORD)

    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(password)
    assert UserSession.objects.filter(user=alice).count() == 2
    assert is_signed_in(phone)
    assert not Event.objects.filter(type=events.PASSWORD_CHANGED, outcome=events.SUCCESS).exists()
    refused = Event.objects.get(type=events.PASSWORD_CHANGED, outcome=events.FAILURE)
    assert (refused.user, refused.reason, refused.detail) == (alice, "wrong_current_password", {"failures": 1})


def test_a_new_password_the_validators_reject_is_refused(alice, password, laptop):
    rejected = [("short", "too short"), ("password1234", "too common"), ("alice@example.com!", "too similar")]
    for weak, message in rejected:
        response = change(laptop, password, weak)
        assert response.status_code == 200
        assert message in response.content.decode()
    assert "match" in change(laptop, password, NEW_PASSWORD, confirm=NEW_PASSWORD + "x").content.decode()
    alice.refresh_from_db()
    assert alice.check_password(password)
    assert not Event.objects.filter(type=events.PASSWORD_CHANGED).exists()


def test_changing_the_password_keeps_this_session_and_ends_the_others(alice, password, laptop, phone):
    phone_key = session_key(phone)

    response = change(laptop, password, NEW_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert authenticate(username="alice", password=NEW_PASSWORD) == alice
    assert authenticate(username="alice", password=password) is None
    page = laptop.get("/account/")
    assert page.status_code == 200  # this session survived the key cycling of update_session_auth_hash
    assert "Your password was changed" in page.content.decode()
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [session_key(laptop)]
    assert not session_exists(phone_key)
    assert not is_signed_in(phone)
    event = Event.objects.get(type=events.PASSWORD_CHANGED)
    assert (event.user, event.outcome, event.detail) == (alice, events.SUCCESS, {"other_sessions_ended": 1,
                                                                    "refresh_revoked": 0, "access_revoked": 0})
    assert Event.objects.filter(type=events.SESSION_REVOKED, reason="password_changed").count() == 1


def test_the_session_stays_usable_on_later_requests_after_a_password_change(alice, password, laptop):
    change(laptop, password, NEW_PASSWORD)
    for _ in range(3):
        assert is_signed_in(laptop)
    assert UserSession.objects.get(user=alice).session_key == session_key(laptop)


def test_guessing_the_current_password_ends_the_session(alice, password, laptop):
    key = session_key(laptop)
    for attempt in range(1, PASSWORD_CHANGE_MAX_FAILURES):
        assert change(laptop, f"guess-number-{attempt}", NEW_PASSWORD).status_code == 200

    response = change(laptop, "the-last-guess", NEW_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert not session_exists(key)
    assert not is_signed_in(laptop)
    alice.refresh_from_db()
    assert alice.check_password(password)
    assert Event.objects.filter(type=events.PASSWORD_CHANGED, outcome=events.FAILURE).count() == (
        PASSWORD_CHANGE_MAX_FAILURES)
    assert Event.objects.get(type=events.LOGOUT).reason == "password_guessing"


def test_a_password_change_in_the_admin_keeps_the_administrator_signed_in(make_user, password):
    root = make_user(username="root", is_superuser=True)
    admin = sign_in("root", password)

    response = admin.post("/admin/password_change/", {"old_password": password, "new_password1": NEW_PASSWORD,
                                                      "new_password2": NEW_PASSWORD})

    assert response.status_code == 302
    # Django's admin cycles the session key too; the session's row follows it, so the session is not refused.
    assert admin.get("/admin/").status_code == 200
    assert UserSession.objects.get(user=root).session_key == session_key(admin)
