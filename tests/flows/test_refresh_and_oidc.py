"""Refresh rotation and lifetimes, userinfo, revocation, introspection, logout and discovery over HTTP."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.utils import timezone
from oauth2_provider.models import get_refresh_token_model

from audit import events
from tests.flows.conftest import audit_mark, authorize, recorded, recorded_in_turn

pytestmark = pytest.mark.django_db(transaction=True)
RefreshToken = get_refresh_token_model()


@pytest.fixture
def tokens(browser, discovery, rp):
    response, oauth, _ = authorize(browser, discovery, rp)
    return oauth.fetch_token(discovery["token_endpoint"], authorization_response=response.headers["Location"],
                             code_verifier="v" * 64)


def refresh(discovery, rp, refresh_token):
    return requests.post(discovery["token_endpoint"], data={"grant_type": "refresh_token",
                                                            "refresh_token": refresh_token},
                         auth=(rp.client.client_id, rp.client_secret), timeout=10)


def userinfo(discovery, access_token, method="GET"):
    return requests.request(method, discovery["userinfo_endpoint"],
                            headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


def test_refresh_rotates_the_token_and_keeps_subject_auth_time_and_scope(discovery, rp, tokens):
    mark = audit_mark()
    answer = refresh(discovery, rp, tokens["refresh_token"])
    assert answer.status_code == 200, answer.text
    renewed = answer.json()
    assert renewed["refresh_token"] != tokens["refresh_token"]
    old = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    new = jwt.decode(renewed["access_token"], options={"verify_signature": False})
    assert (new["sub"], new["auth_time"], new["scope"]) == (old["sub"], old["auth_time"], old["scope"])
    assert new["jti"] != old["jti"]
    assert "id_token" in renewed
    issued = recorded(mark, type=events.TOKEN_ISSUED, client_id=rp.client.client_id, username="alice")
    assert (issued.detail["grant_type"], issued.detail["jti"]) == ("refresh_token", new["jti"])


def test_refresh_tokens_are_stored_only_as_checksums(tokens):
    stored = RefreshToken.objects.get()
    assert stored.token == ""
    assert tokens["refresh_token"] not in stored.token_checksum


def test_refresh_token_idle_lifetime_is_enforced(discovery, rp, tokens):
    RefreshToken.objects.update(created=timezone.now() - timedelta(seconds=rp.client.refresh_token_idle_lifetime))
    mark = audit_mark()
    answer = refresh(discovery, rp, tokens["refresh_token"])
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    event = recorded(mark, type=events.TOKEN_FAILED, reason="invalid_grant", client_id=rp.client.client_id)
    assert event.detail["cause"] == "idle_lifetime_over"


def test_refresh_token_absolute_lifetime_is_enforced_even_when_used_often(discovery, rp, tokens):
    from idp.models import GrantContext

    GrantContext.objects.update(redeemed_at=timezone.now() - timedelta(seconds=rp.client.refresh_token_lifetime))
    mark = audit_mark()
    answer = refresh(discovery, rp, tokens["refresh_token"])
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    event = recorded(mark, type=events.TOKEN_FAILED, reason="invalid_grant", client_id=rp.client.client_id)
    assert event.detail["cause"] == "lifetime_over"


def test_userinfo_answers_get_and_post_with_claims_by_scope(discovery, tokens):
    for method in ("GET", "POST"):
        answer = userinfo(discovery, tokens["access_token"], method)
        assert answer.status_code == 200, answer.text
        claims = answer.json()
        assert claims["sub"] == jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"]
        assert claims["email"] == "alice@example.com"
        assert claims["preferred_username"] == "alice"
        assert claims["roles"] == ["admin", "orders:write"]


def test_userinfo_refuses_a_token_without_the_openid_scope(browser, discovery, rp):
    response, oauth, _ = authorize(browser, discovery, rp, scope="orders:read")
    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=response.headers["Location"],
                              code_verifier="v" * 64)
    mark = audit_mark()
    answer = userinfo(discovery, token["access_token"])
    # RFC 6750 §3.1: the token is valid, it lacks the scope: 403 insufficient_scope.
    assert answer.status_code == 403
    assert answer.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    recorded(mark, type=events.ACCESS_DENIED, reason="insufficient_scope", username="")


def test_revoked_access_token_is_refused_at_userinfo_and_inactive_at_introspection(discovery, rp, tokens):
    mark = audit_mark()
    answer = requests.post(discovery["revocation_endpoint"], data={"token": tokens["access_token"],
                                                                   "token_type_hint": "access_token"},
                           auth=(rp.client.client_id, rp.client_secret), timeout=10)
    assert answer.status_code == 200
    assert userinfo(discovery, tokens["access_token"]).status_code == 401
    introspected = requests.post(discovery["introspection_endpoint"], data={"token": tokens["access_token"]},
                                 auth=(rp.client.client_id, rp.client_secret), timeout=10)
    assert introspected.json() == {"active": False}
    revocation, *_ = recorded_in_turn(mark, (events.TOKEN_REVOKED, ""), (events.TOKEN_REJECTED, "revoked"),
                                      (events.TOKEN_REJECTED, "revoked"))
    assert revocation.client_id == rp.client.client_id


def test_revoked_refresh_token_cannot_be_used(discovery, rp, tokens):
    answer = requests.post(discovery["revocation_endpoint"], data={"token": tokens["refresh_token"],
                                                                   "token_type_hint": "refresh_token"},
                           auth=(rp.client.client_id, rp.client_secret), timeout=10)
    assert answer.status_code == 200
    mark = audit_mark()
    assert refresh(discovery, rp, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    # DOT revokes the whole family when a revoked refresh token comes back (RFC 9700 §4.14.2), as for a reuse.
    recorded(mark, type=events.TOKEN_REFRESH_REUSED, reason="refresh_reused", client_id=rp.client.client_id)


def test_introspection_describes_the_clients_own_access_and_refresh_tokens(discovery, rp, tokens, idp):
    answer = requests.post(discovery["introspection_endpoint"], data={"token": tokens["access_token"]},
                           auth=(rp.client.client_id, rp.client_secret), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["active"] is True
    assert body["client_id"] == rp.client.client_id
    assert body["iss"] == idp
    assert body["username"] == "alice"
    assert body["scope"] == "openid profile email roles"
    refresh_answer = requests.post(discovery["introspection_endpoint"],
                                   data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
                                   auth=(rp.client.client_id, rp.client_secret), timeout=10).json()
    assert refresh_answer["active"] is True
    assert refresh_answer["token_type"] == "refresh_token"


def test_introspection_lets_a_resource_server_named_in_aud_see_the_token(browser, discovery, make_client, rp):
    api = make_client(name="Orders API", grant_types=["client-credentials"], redirect_uris=[],
                      allowed_scopes=["orders:read"], audiences=["https://orders.example.com"])
    rp.client.audiences = [*rp.client.audiences, api.client.client_id]
    rp.client.save()
    response, oauth, _ = authorize(browser, discovery, rp)
    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=response.headers["Location"],
                              code_verifier="v" * 64, resource=api.client.client_id)
    answer = requests.post(discovery["introspection_endpoint"], data={"token": token["access_token"]},
                           auth=(api.client.client_id, api.client_secret), timeout=10).json()
    assert answer["active"] is True
    assert answer["aud"] == api.client.client_id


def test_logout_accepts_an_id_token_hint_signed_before_a_key_rotation(browser, discovery, rp, tokens):
    from idp.keys import reset_key_cache, signing_key_rotate

    signing_key_rotate(now=timezone.now() + timedelta(hours=1))
    reset_key_cache()
    params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/bye",
              "state": "bye-1"}
    page = browser.get(discovery["end_session_endpoint"], params=params, timeout=10)
    assert page.status_code == 200, page.text
    assert "Sign out" in page.text
    import re

    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = browser.post(page.url, data={**form, "allow": "Logout"}, headers={"Referer": page.url},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("https://rp.example.com/bye")
    assert parse_qs(urlsplit(location).query)["state"] == ["bye-1"]
    # The browser session is over: a new authorization request asks for a login again.
    response, _, _ = authorize(browser, discovery, rp)
    assert response.headers["Location"].startswith("/login/")


def test_logout_refuses_an_unregistered_post_logout_redirect_uri(browser, discovery, tokens):
    params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example.com/"}
    page = browser.get(discovery["end_session_endpoint"], params=params, allow_redirects=False, timeout=10)
    assert page.status_code == 400
    assert "Location" not in page.headers


def test_logout_refuses_a_forged_id_token_hint(browser, discovery, tokens):
    header, payload, _ = tokens["id_token"].split(".")
    forged = f"{header}.{payload}.AAAA"
    page = browser.get(discovery["end_session_endpoint"], params={"id_token_hint": forged}, timeout=10)
    assert page.status_code == 400


def test_discovery_lists_every_endpoint_and_only_s256(discovery, idp):
    assert discovery["issuer"] == idp
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "end_session_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert discovery[name].startswith(idp + "/")
        assert requests.options(discovery[name], timeout=10).status_code < 500
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["response_types_supported"] == ["code"]
    assert set(discovery["grant_types_supported"]) == {
        "authorization_code", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"}
    assert "none" not in discovery["id_token_signing_alg_values_supported"]
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert requests.get(f"{idp}/.well-known/oauth-authorization-server", timeout=10).json() == discovery
