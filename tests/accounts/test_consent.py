"""The consent step of the authorization endpoint: shown once per new scope, remembered, revocable, audited."""

from datetime import timedelta

import pytest
from django.test import Client as BrowserClient
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from accounts.consents import consent_covers, consent_grant, consent_revoke, consents_for_user, scopes_described
from accounts.models import Consent
from audit import events
from audit.models import Event
from idp.keys import signing_key_ensure
from tests.accounts.oauth_browser import (
    approve,
    authorize_url,
    exchange_code,
    hidden_fields,
    make_client,
    redirect_query,
)

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()


@pytest.fixture
def third_party(db):
    return make_client()


def test_consent_page_names_the_client_and_describes_each_scope_in_plain_words(browser, third_party):
    page = browser.get(authorize_url(third_party, scope="openid email orders:read"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Third Party App" in html
    assert "Sign you in" in html and "See your email address" in html
    assert "Use the “orders:read” permission on your behalf" in html
    assert "rp.example.com" in html  # where the answer will be sent
    assert 'name="csrfmiddlewaretoken"' in html
    assert "no-store" in page.headers["Cache-Control"]
    assert not Consent.objects.exists()


def test_approving_is_remembered_so_the_same_request_later_gets_a_code_without_the_page(browser, third_party, alice,
                                                                                         settings):
    answer = approve(browser, authorize_url(third_party, scope="openid email", state="first"))
    query = redirect_query(answer)
    assert query["state"] == ["first"] and query["iss"] == [settings.IDP_ISSUER] and query["code"]
    consent = Consent.objects.get(user=alice, client=third_party.client)
    assert consent.scopes == ["email", "openid"]
    granted = Event.objects.get(type=events.CONSENT_GRANTED)
    assert granted.outcome == events.SUCCESS and granted.user_id == alice.pk
    assert granted.client_id == third_party.client.client_id and granted.detail["scopes"] == ["email", "openid"]

    again = browser.get(authorize_url(third_party, scope="openid email", state="second"))
    query = redirect_query(again)
    assert query["state"] == ["second"] and query["code"] and query["iss"] == [settings.IDP_ISSUER]
    assert Grant.objects.count() == 2
    assert Event.objects.filter(type=events.CONSENT_GRANTED).count() == 1  # no page, no new approval


def test_a_request_for_fewer_scopes_than_remembered_is_approved_at_once(browser, third_party):
    redirect_query(approve(browser, authorize_url(third_party, scope="openid email profile")))
    assert "code" in redirect_query(browser.get(authorize_url(third_party, scope="email")))


def test_a_request_for_more_scopes_than_remembered_shows_the_page_again_marking_the_new_ones(browser, third_party,
                                                                                              alice):
    redirect_query(approve(browser, authorize_url(third_party, scope="openid")))
    page = browser.get(authorize_url(third_party, scope="openid email"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "asking for more" in html
    email_item = html[html.index("See your email address"):]
    assert email_item.index('<span class="badge">New</span>') < email_item.index("</li>")
    openid_item = html[html.index("Sign you in"):]
    assert "badge" not in openid_item[:openid_item.index("</li>")]

    redirect_query(approve(browser, authorize_url(third_party, scope="openid email")))
    assert Consent.objects.get(user=alice, client=third_party.client).scopes == ["email", "openid"]
    assert Event.objects.filter(type=events.CONSENT_GRANTED).count() == 2


def test_first_party_clients_skip_the_consent_page(browser, db):
    first_party = make_client(name="Our own portal", skip_consent=True)
    query = redirect_query(browser.get(authorize_url(first_party, scope="openid email")))
    assert query["code"]
    assert not Consent.objects.exists()
    assert not Event.objects.filter(type__startswith="consent.").exists()


def test_denying_returns_access_denied_with_state_and_iss_and_issues_nothing(browser, third_party, alice, settings):
    answer = approve(browser, authorize_url(third_party, scope="openid email", state="keep-me"), allow=False)
    query = redirect_query(answer)
    assert query["error"] == ["access_denied"]  # RFC 6749 §4.1.2.1
    assert query["state"] == ["keep-me"]
    assert query["iss"] == [settings.IDP_ISSUER]  # RFC 9207 §2: errors too
    assert "code" not in query
    assert not Grant.objects.exists() and not AccessToken.objects.exists()
    assert not Consent.objects.exists()
    denied = Event.objects.get(type=events.CONSENT_DENIED)
    assert denied.outcome == events.FAILURE and denied.user_id == alice.pk
    assert denied.client_id == third_party.client.client_id and denied.detail["scopes"] == ["email", "openid"]
    assert not Event.objects.filter(type=events.CONSENT_GRANTED).exists()


def test_prompt_consent_shows_the_page_even_when_consent_is_remembered(browser, third_party):
    redirect_query(approve(browser, authorize_url(third_party, scope="openid email")))
    page = browser.get(authorize_url(third_party, scope="openid email", prompt="consent"))
    assert page.status_code == 200
    assert "Third Party App" in page.content.decode()


def test_prompt_none_without_consent_answers_consent_required_instead_of_a_page(browser, third_party, settings):
    query = redirect_query(browser.get(authorize_url(third_party, scope="openid email", prompt="none", state="s")))
    assert query["error"] == ["consent_required"]  # OpenID Connect Core §3.1.2.6
    assert query["state"] == ["s"] and query["iss"] == [settings.IDP_ISSUER]
    assert "code" not in query and not Grant.objects.exists()

    redirect_query(approve(browser, authorize_url(third_party, scope="openid email")))
    assert "code" in redirect_query(browser.get(authorize_url(third_party, scope="openid email", prompt="none")))


def test_prompt_none_without_a_session_answers_login_required_with_iss(client, third_party, settings):
    query = redirect_query(client.get(authorize_url(third_party, prompt="none", state="s")))
    assert query["error"] == ["login_required"]  # OpenID Connect Core §3.1.2.6
    assert query["state"] == ["s"] and query["iss"] == [settings.IDP_ISSUER]
    assert not Grant.objects.exists()


def test_an_old_access_token_with_approval_prompt_auto_does_not_skip_consent(browser, third_party, alice):
    # DOT's own shortcut approves whenever an unexpired token covers the scopes; consent lives in one place only.
    AccessToken.objects.create(user=alice, application=third_party.client, token="x" * 40, scope="openid email",
                               expires=timezone.now() + timedelta(minutes=5))
    page = browser.get(authorize_url(third_party, scope="openid email", approval_prompt="auto"))
    assert page.status_code == 200
    assert "Third Party App" in page.content.decode()
    assert not Grant.objects.exists()


def test_a_deny_post_with_a_forged_redirect_uri_is_not_turned_into_an_open_redirect(browser, third_party):
    url = authorize_url(third_party)
    form = hidden_fields(browser.get(url).content.decode())
    form["redirect_uri"] = "https://evil.example.com/steal"
    answer = browser.post(url, form)
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert "can’t be completed" in answer.content.decode()
    assert not Event.objects.filter(type__startswith="consent.").exists()
    assert not Grant.objects.exists()


def test_an_approving_post_with_a_forged_redirect_uri_issues_no_code(browser, third_party):
    url = authorize_url(third_party)
    form = {**hidden_fields(browser.get(url).content.decode()), "allow": "Authorize",
            "redirect_uri": "https://evil.example.com/steal"}
    answer = browser.post(url, form)
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert not Grant.objects.exists() and not Consent.objects.exists()


def test_a_post_naming_an_unknown_client_gets_an_error_page_not_a_server_error(browser, third_party):
    url = authorize_url(third_party)
    form = {**hidden_fields(browser.get(url).content.decode()), "allow": "Authorize", "client_id": "no-such-client"}
    answer = browser.post(url, form)
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert not Grant.objects.exists() and not Consent.objects.exists()


def test_a_post_missing_its_hidden_fields_gets_an_error_page(browser, third_party):
    answer = browser.post(authorize_url(third_party), {"allow": "Authorize"})
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "can’t be completed" in answer.content.decode()
    assert not Grant.objects.exists()


def test_a_cross_site_consent_post_without_the_csrf_token_is_refused(alice, third_party):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    url = authorize_url(third_party)
    form = {key: value for key, value in hidden_fields(browser.get(url).content.decode()).items()
            if key != "csrfmiddlewaretoken"}
    answer = browser.post(url, {**form, "allow": "Authorize"})
    assert answer.status_code == 403
    assert "Location" not in answer.headers
    assert not Grant.objects.exists() and not Consent.objects.exists()


def test_an_unknown_client_gets_a_clear_error_page_and_no_redirect(browser, third_party):
    url = authorize_url(third_party).replace(third_party.client.client_id, "no-such-client")
    page = browser.get(url)
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "can’t be completed" in page.content.decode()


def test_an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect(browser, third_party):
    url = authorize_url(third_party).replace("callback", "elsewhere")
    page = browser.get(url)
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "rp.example.com/elsewhere" not in page.content.decode()


def test_an_error_sent_back_to_the_client_carries_iss(browser, third_party, settings):
    query = redirect_query(browser.get(authorize_url(third_party, scope="openid admin:everything", state="x")))
    assert query["error"] == ["invalid_scope"]
    assert query["state"] == ["x"] and query["iss"] == [settings.IDP_ISSUER]


def test_consent_revoke_forgets_the_consent_and_revokes_the_users_tokens_for_that_client_only(browser, third_party,
                                                                                              alice, make_user):
    signing_key_ensure()
    code = redirect_query(approve(browser, authorize_url(third_party, scope="openid email")))["code"][0]
    tokens = exchange_code(browser, third_party, code)
    portal = make_client(name="Our own portal", skip_consent=True)
    portal_code = redirect_query(browser.get(authorize_url(portal, scope="openid")))["code"][0]
    exchange_code(browser, portal, portal_code)
    bob = make_user(username="bob")
    consent_grant(user=bob, client=third_party.client, scopes=["openid"])
    unused_code = redirect_query(browser.get(authorize_url(third_party, scope="openid email")))["code"][0]

    assert consent_revoke(user=alice, client_pk=third_party.client.pk) is True

    assert not Consent.objects.filter(user=alice).exists()
    assert Consent.objects.filter(user=bob).exists()
    assert not AccessToken.objects.filter(user=alice, application=third_party.client).exists()
    assert not RefreshToken.objects.filter(user=alice, application=third_party.client, revoked__isnull=True).exists()
    assert not Grant.objects.filter(code=unused_code).exists()
    assert AccessToken.objects.filter(user=alice, application=portal.client).exists()
    assert RefreshToken.objects.filter(user=alice, application=portal.client, revoked__isnull=True).exists()
    revoked = Event.objects.get(type=events.CONSENT_REVOKED)
    assert revoked.user_id == alice.pk and revoked.client_id == third_party.client.client_id
    assert revoked.detail["scopes"] == ["email", "openid"] and revoked.detail["revoked_refresh_count"] == 1

    refreshed = BrowserClient().post("/o/token/", {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": third_party.client.client_id, "client_secret": third_party.client_secret,
    })
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    assert browser.get(authorize_url(third_party, scope="openid email")).status_code == 200  # asked again


def test_consent_revoke_of_a_client_the_user_never_approved_changes_nothing(alice, third_party, make_user):
    bob = make_user(username="bob")
    consent_grant(user=bob, client=third_party.client, scopes=["openid"])
    assert consent_revoke(user=alice, client_pk=third_party.client.pk) is False
    assert consent_revoke(user=alice, client_pk=999_999) is False
    assert Consent.objects.filter(user=bob).exists()
    assert not Event.objects.filter(type=events.CONSENT_REVOKED).exists()


def test_consent_covers_only_a_subset_of_what_was_approved(alice, third_party):
    assert consent_covers(user=alice, client=third_party.client, scopes=[]) is False
    consent_grant(user=alice, client=third_party.client, scopes=["openid", "email"])
    assert consent_covers(user=alice, client=third_party.client, scopes=["email"]) is True
    assert consent_covers(user=alice, client=third_party.client, scopes=["email", "profile"]) is False


def test_consents_for_user_lists_only_that_users_consents_with_their_clients(alice, third_party, make_user):
    other = make_client(name="Another App")
    bob = make_user(username="bob")
    consent_grant(user=alice, client=other.client, scopes=["openid"])
    consent_grant(user=alice, client=third_party.client, scopes=["email", "openid"])
    consent_grant(user=bob, client=third_party.client, scopes=["openid"])
    listed = list(consents_for_user(user=alice))
    assert [consent.client.name for consent in listed] == ["Another App", "Third Party App"]
    described = scopes_described(listed[1].scopes)
    assert [(scope.name, scope.description) for scope in described] == [
        ("email", "See your email address"), ("openid", "Sign you in")]
