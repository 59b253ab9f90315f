"""The account page: profile, sessions and consents, each revocable by its owner only, every form CSRF-protected."""

import re

import pytest
from django.test import Client
from oauth2_provider.models import get_refresh_token_model

from accounts.consents import consent_grant
from accounts.models import Consent, UserSession
from audit import events
from audit.models import Event
from clients.services import client_create
from tests.accounts.browser_sessions import (
    FIREFOX,
    SAFARI_IPHONE,
    is_signed_in,
    session_exists,
    session_key,
    sign_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_user):
    return make_user(username="alice", email="alice@example.com", first_name="Alice", last_name="Liddell",
                     roles=["orders:write", "admin"])


@pytest.fixture
def laptop(alice, password):
    return sign_in("alice", password, ip="198.51.100.7", user_agent=FIREFOX)


@pytest.fixture
def phone(alice, password):
    return sign_in("alice", password, ip="203.0.113.9", user_agent=SAFARI_IPHONE)


@pytest.fixture
def orders_app():
    return client_create(name="Orders web", client_type="confidential", grant_types=["authorization-code"],
                         redirect_uris=["https://orders.example.com/callback"],
                         allowed_scopes=["openid", "profile", "email", "orders:read"],
                         audiences=["https://orders.example.com"]).client


def row_of(client) -> UserSession:
    return UserSession.objects.get(session_key=session_key(client))


def test_account_page_needs_a_signed_in_user(client):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/account/"


def test_account_page_shows_the_profile_and_roles_without_inline_script_or_style(laptop):
    response = laptop.get("/account/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    for text in ("alice", "alice@example.com", "Alice Liddell", "admin, orders:write"):
        assert text in page
    assert 'href="/account/password/"' in page
    assert "<script" not in page and "style=" not in page


def test_account_page_lists_each_session_with_browser_ip_and_marks_this_one(laptop, phone):
    page = laptop.get("/account/").content.decode()
    assert "Firefox on Linux" in page and "198.51.100.7" in page
    assert "Safari on iOS" in page and "203.0.113.9" in page
    assert page.count("(this session)") == 1
    this_session = page.index("Firefox on Linux")
    assert page.index("(this session)") > this_session
    # Only the other session gets a Revoke button; this one is ended with Sign out.
    assert f'action="/account/sessions/{row_of(phone).pk}/revoke/"' in page
    assert f'action="/account/sessions/{row_of(laptop).pk}/revoke/"' not in page
    assert 'action="/account/sessions/revoke-others/"' in page


def test_revoking_a_session_from_the_account_page_signs_that_browser_out(alice, laptop, phone):
    phone_key, phone_row = session_key(phone), row_of(phone)

    response = laptop.post(f"/account/sessions/{phone_row.pk}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert not session_exists(phone_key)
    assert not UserSession.objects.filter(pk=phone_row.pk).exists()
    assert not is_signed_in(phone)
    page = laptop.get("/account/")
    assert page.status_code == 200
    assert "The session of Safari on iOS was signed out." in page.content.decode()
    event = Event.objects.get(type=events.SESSION_REVOKED)
    assert (event.user, event.outcome, event.reason) == (alice, events.SUCCESS, "user_request")
    assert event.detail == {"session": phone_row.pk, "ip": "203.0.113.9", "browser": "Safari on iOS"}


def test_revoking_this_session_signs_this_browser_out(alice, laptop):
    key, row = session_key(laptop), row_of(laptop)

    response = laptop.post(f"/account/sessions/{row.pk}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert not session_exists(key)
    assert not UserSession.objects.exists()
    assert Event.objects.get(type=events.SESSION_REVOKED).user == alice
    assert Event.objects.get(type=events.LOGOUT).reason == "revoked"


def test_another_users_session_cannot_be_revoked(make_user, password, laptop):
    make_user(username="mallory")
    mallory = sign_in("mallory", password, ip="192.0.2.66")
    target = row_of(laptop)

    response = mallory.post(f"/account/sessions/{target.pk}/revoke/")

    assert response.status_code == 404
    assert UserSession.objects.filter(pk=target.pk, session_key=target.session_key).exists()
    assert session_exists(target.session_key)
    assert is_signed_in(laptop)
    assert not Event.objects.filter(type=events.SESSION_REVOKED).exists()


def test_revoking_a_session_that_does_not_exist_is_a_404(laptop):
    assert laptop.post("/account/sessions/999999/revoke/").status_code == 404
    assert laptop.post("/account/sessions/not-a-number/revoke/").status_code == 404


def test_sign_out_other_sessions_keeps_only_this_one(alice, password, laptop, phone):
    tablet = sign_in("alice", password, ip="192.0.2.10")

    response = laptop.post("/account/sessions/revoke-others/")

    assert response.status_code == 302
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [session_key(laptop)]
    assert not is_signed_in(phone) and not is_signed_in(tablet)
    page = laptop.get("/account/")
    assert page.status_code == 200
    assert "Signed out of 2 other sessions." in page.content.decode()
    assert Event.objects.filter(type=events.SESSION_REVOKED, reason="sign_out_others", user=alice).count() == 2


def test_session_revocation_needs_post(laptop, phone):
    assert laptop.get(f"/account/sessions/{row_of(phone).pk}/revoke/").status_code == 405
    assert laptop.get("/account/sessions/revoke-others/").status_code == 405
    assert is_signed_in(phone)


def test_consented_clients_are_listed_with_scopes_in_plain_words(alice, laptop, orders_app):
    consent_grant(user=alice, client=orders_app, scopes=["openid", "email", "orders:read"])

    page = laptop.get("/account/").content.decode()

    assert "Orders web" in page
    assert "See your email address" in page
    assert "Sign you in" in page
    assert "orders:read" in page
    assert f'action="/account/consents/{orders_app.pk}/revoke/"' in page


def test_revoking_a_consent_forgets_it_revokes_the_clients_tokens_and_records_it(alice, laptop, orders_app):
    consent_grant(user=alice, client=orders_app, scopes=["openid", "email"])
    refresh = get_refresh_token_model().objects.create(user=alice, application=orders_app, token="r" * 43)

    response = laptop.post(f"/account/consents/{orders_app.pk}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert not Consent.objects.exists()
    refresh.refresh_from_db()
    assert refresh.revoked is not None
    event = Event.objects.get(type=events.CONSENT_REVOKED)
    assert (event.user, event.client_id) == (alice, orders_app.client_id)
    assert "Orders web" not in laptop.get("/account/").content.decode()


def test_another_users_consent_cannot_be_revoked(alice, make_user, password, orders_app):
    consent_grant(user=alice, client=orders_app, scopes=["openid"])
    make_user(username="mallory")
    mallory = sign_in("mallory", password, ip="192.0.2.66")

    assert mallory.post(f"/account/consents/{orders_app.pk}/revoke/").status_code == 404
    assert Consent.objects.filter(user=alice).exists()
    assert not Event.objects.filter(type=events.CONSENT_REVOKED).exists()


@pytest.mark.parametrize(
    "path",
    ["/account/sessions/{other}/revoke/", "/account/sessions/revoke-others/", "/account/consents/{client}/revoke/",
     "/account/password/", "/password-reset/", "/logout/"],
)
def test_every_account_form_refuses_a_post_without_a_csrf_token(alice, password, phone, orders_app, path):
    consent_grant(user=alice, client=orders_app, scopes=["openid"])
    strict = Client(enforce_csrf_checks=True)
    strict.get("/login/")
    page = strict.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert strict.post("/login/", {"username": "alice", "password": password,
                                   "csrfmiddlewaretoken": token}).status_code == 302
    sessions_before = set(UserSession.objects.values_list("pk", flat=True))

    response = strict.post(path.format(other=row_of(phone).pk, client=orders_app.pk),
                           {"old_password": password, "new_password1": "another-long-passphrase-7",
                            "new_password2": "another-long-passphrase-7", "email": "alice@example.com"})

    assert response.status_code == 403
    assert set(UserSession.objects.values_list("pk", flat=True)) == sessions_before
    assert Consent.objects.filter(user=alice).exists()
    alice.refresh_from_db()
    assert alice.check_password(password)
    assert not Event.objects.filter(type__in=[events.SESSION_REVOKED, events.CONSENT_REVOKED, events.LOGOUT,
                                              events.PASSWORD_CHANGED, events.PASSWORD_RESET_REQUESTED]).exists()
