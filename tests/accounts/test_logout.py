"""Signing out: the IdP's own /logout/ page and OpenID Connect RP-initiated logout at /o/logout/."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client as BrowserClient
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from idp.keys import signing_key_ensure
from tests.accounts.oauth_browser import (
    POST_LOGOUT_REDIRECT_URI,
    authorize_url,
    exchange_code,
    hidden_fields,
    make_client,
    redirect_query,
)

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


def _session_key(browser) -> str:
    return browser.cookies[django_settings.SESSION_COOKIE_NAME].value


def _signed_in(browser) -> bool:
    response = browser.get("/account/")
    return response.status_code == 200


def test_the_logout_page_asks_first_and_a_get_never_signs_anyone_out(browser):
    page = browser.get("/logout/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<form method="post" action="/logout/">' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "alice" in html
    assert "no-store" in page.headers["Cache-Control"]
    assert _signed_in(browser)


def test_signing_out_deletes_the_session_and_clears_the_cookie(browser):
    key = _session_key(browser)
    assert Session.objects.filter(session_key=key).exists()

    answer = browser.post("/logout/")

    assert answer.status_code == 302 and answer.headers["Location"] == django_settings.LOGOUT_REDIRECT_URL
    assert not Session.objects.filter(session_key=key).exists()
    cookie = answer.cookies[django_settings.SESSION_COOKIE_NAME]
    assert cookie.value == "" and cookie["max-age"] == 0
    assert not _signed_in(browser)
    assert "You have signed out." in browser.get(django_settings.LOGOUT_REDIRECT_URL).content.decode()


def test_a_cross_site_logout_post_without_the_csrf_token_is_refused(alice):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    key = _session_key(browser)

    answer = browser.post("/logout/")

    assert answer.status_code == 403
    assert "This form can’t be accepted" in answer.content.decode()
    assert Session.objects.filter(session_key=key).exists()
    assert _signed_in(browser)


def test_logout_with_the_pages_csrf_token_signs_out(alice):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    token = hidden_fields(browser.get("/logout/").content.decode())["csrfmiddlewaretoken"]
    assert browser.post("/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert not _signed_in(browser)


def test_logout_follows_next_only_to_this_host(browser, alice):
    assert browser.post("/logout/", {"next": "https://evil.example.com/"}).headers["Location"] == "/login/"
    browser.force_login(alice)
    assert browser.post("/logout/", {"next": "/password-reset/"}).headers["Location"] == "/password-reset/"


def test_the_logout_page_of_a_signed_out_browser_offers_to_sign_in(client, db):
    page = client.get("/logout/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "You are signed out" in html and 'href="/login/"' in html
    assert "<form" not in html


# --- RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) ---------------------------------------------


@pytest.fixture
def signed_in_with_tokens(browser):
    """Alice signed in to a relying party: its tokens and the ID token it would send back as id_token_hint."""
    signing_key_ensure()
    issued = make_client(name="Orders web", skip_consent=True)
    code = redirect_query(browser.get(authorize_url(issued, scope="openid email")))["code"][0]
    return issued, exchange_code(browser, issued, code)


def test_rp_initiated_logout_asks_then_ends_the_session_and_returns_to_the_registered_uri(browser, alice,
                                                                                       signed_in_with_tokens):
    issued, tokens = signed_in_with_tokens
    key = _session_key(browser)
    page = browser.get("/o/logout/", {"id_token_hint": tokens["id_token"],
                                      "post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI, "state": "bye-1"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Sign out of" in html and "Orders web" in html
    assert "no-store" in page.headers["Cache-Control"]
    assert Session.objects.filter(session_key=key).exists()  # asking changed nothing yet

    form = {**hidden_fields(html), "allow": "Logout"}
    answer = browser.post("/o/logout/", form)

    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == POST_LOGOUT_REDIRECT_URI
    assert parse_qs(location.query)["state"] == ["bye-1"]
    assert not Session.objects.filter(session_key=key).exists()
    assert not _signed_in(browser)
    assert not AccessToken.objects.filter(user=alice).exists()
    assert not RefreshToken.objects.filter(user=alice, revoked__isnull=True).exists()


def test_rp_initiated_logout_stay_signed_in_keeps_the_session_and_redirects_nowhere(browser, signed_in_with_tokens):
    _, tokens = signed_in_with_tokens
    page = browser.get("/o/logout/", {"id_token_hint": tokens["id_token"],
                                      "post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI})
    answer = browser.post("/o/logout/", hidden_fields(page.content.decode()))
    assert "Location" not in answer.headers
    assert "You are still signed in" in answer.content.decode()
    assert _signed_in(browser)


def test_a_cross_site_rp_logout_post_without_the_csrf_token_is_refused(alice, signed_in_with_tokens):
    _, tokens = signed_in_with_tokens
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    answer = browser.post("/o/logout/", {"id_token_hint": tokens["id_token"], "allow": "Logout"})
    assert answer.status_code == 403
    assert _signed_in(browser)
    assert AccessToken.objects.filter(user=alice).exists()


def test_rp_initiated_logout_to_an_unregistered_uri_shows_an_error_page_and_signs_nobody_out(browser,
                                                                                           signed_in_with_tokens):
    _, tokens = signed_in_with_tokens
    page = browser.get("/o/logout/", {"id_token_hint": tokens["id_token"],
                                      "post_logout_redirect_uri": "https://evil.example.com/"})
    assert page.status_code == 400
    assert "Location" not in page.headers
    html = page.content.decode()
    assert "This sign-out request can’t be completed" in html and "<form" not in html
    assert _signed_in(browser)


@pytest.mark.django_db
def test_rp_initiated_logout_without_a_return_address_signs_out_and_lands_on_the_idp(client, make_user):
    client.force_login(make_user(username="carol"))
    assert client.get("/o/logout/").status_code == 200  # asks first
    response = client.post("/o/logout/", {"allow": "true"})
    assert response.status_code == 302
    assert client.get("/account/").status_code == 302  # signed out
    landing = client.get(response["Location"], follow=True)
    assert landing.status_code == 200
    assert landing.redirect_chain[-1][0].startswith("/login/")
