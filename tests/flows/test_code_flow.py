"""The authorization-code flow with PKCE, end to end over HTTP, driven by authlib and verified by PyJWT."""

import hashlib
from base64 import urlsafe_b64encode
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from oauth2_provider.models import get_grant_model

from audit import events
from audit.models import Event
from idp.models import GrantContext
from tests.flows.conftest import REDIRECT_URI, audit_mark, authorize, recorded

pytestmark = pytest.mark.django_db(transaction=True)


def redeem(oauth, discovery, location, **extra):
    return oauth.fetch_token(discovery["token_endpoint"], authorization_response=location,
                             code_verifier="v" * 64, **extra)


def test_code_flow_returns_state_and_iss_and_an_rfc9068_access_token(browser, discovery, rp, jwks_client, idp):
    response, oauth, state = authorize(browser, discovery, rp)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT_URI + "?")
    assert query["state"] == [state]
    assert query["iss"] == [idp]  # RFC 9207

    mark = audit_mark()
    token = redeem(oauth, discovery, location)
    access = token["access_token"]
    header = jwt.get_unverified_header(access)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    key = jwks_client.get_signing_key_from_jwt(access)
    assert key.key_id == header["kid"]
    claims = jwt.decode(access, key.key, algorithms=["RS256"], audience="https://orders.example.com", issuer=idp,
                        options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id"]})
    from accounts.models import User

    alice = User.objects.get(username="alice")
    assert claims["sub"] == str(alice.subject)
    assert claims["client_id"] == rp.client.client_id
    assert claims["scope"] == "openid profile email roles"
    assert claims["roles"] == ["admin", "orders:write"]
    assert claims["exp"] - claims["iat"] == 300
    assert isinstance(claims["auth_time"], int)
    for personal in ("email", "name", "preferred_username", "given_name"):
        assert personal not in claims
    assert token["token_type"].lower() == "bearer"
    assert len(token["refresh_token"]) >= 43 and token["refresh_token"].count(".") == 0
    issued = recorded(mark, type=events.TOKEN_ISSUED, client_id=rp.client.client_id, user=alice)
    assert issued.detail == {"grant_type": "authorization_code", "jti": claims["jti"], "scope": claims["scope"],
                             "audience": "https://orders.example.com", "token_family": issued.detail["token_family"]}


def test_id_token_carries_nonce_at_hash_auth_time_and_sid(browser, discovery, rp, jwks_client, idp):
    response, oauth, _ = authorize(browser, discovery, rp)
    token = redeem(oauth, discovery, response.headers["Location"])
    id_token = token["id_token"]
    key = jwks_client.get_signing_key_from_jwt(id_token)
    claims = jwt.decode(id_token, key.key, algorithms=["RS256"], audience=rp.client.client_id, issuer=idp)
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    digest = hashlib.sha256(token["access_token"].encode()).digest()
    assert claims["at_hash"] == urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["sid"] and isinstance(claims["auth_time"], int)
    access_claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["sub"] == access_claims["sub"]
    assert claims["auth_time"] == access_claims["auth_time"]
    assert claims["email"] == "alice@example.com"


def test_requested_resource_becomes_the_audience(browser, discovery, rp, idp):
    response, oauth, _ = authorize(browser, discovery, rp)
    token = redeem(oauth, discovery, response.headers["Location"], resource="https://inventory.example.com")
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://inventory.example.com"


def test_resource_the_client_may_not_use_is_refused_with_invalid_target(browser, discovery, rp):
    response, oauth, _ = authorize(browser, discovery, rp)
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    mark = audit_mark()
    answer = requests.post(discovery["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": "v" * 64, "resource": "https://payroll.example.com",
    }, auth=(rp.client.client_id, rp.client_secret), timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_target"
    assert answer.headers["Cache-Control"] == "no-store"
    recorded(mark, type=events.TOKEN_FAILED, reason="invalid_target", client_id=rp.client.client_id)


def test_codes_are_short_lived_and_removed_once_redeemed(browser, discovery, rp):
    response, oauth, _ = authorize(browser, discovery, rp)
    grant = get_grant_model().objects.get()
    assert (grant.expires - grant.created).total_seconds() <= 61
    redeem(oauth, discovery, response.headers["Location"])
    assert not get_grant_model().objects.exists()
    assert GrantContext.objects.get().redeemed_at is not None


def test_public_client_completes_the_flow_with_pkce_and_no_secret(browser, discovery, make_client, idp):
    spa = make_client(name="SPA", client_type="public", allowed_origins=["https://rp.example.com"])
    assert spa.client_secret is None
    response, oauth, _ = authorize(browser, discovery, spa)
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    mark = audit_mark()
    answer = requests.post(discovery["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": "v" * 64, "client_id": spa.client.client_id,
    }, headers={"Origin": "https://rp.example.com"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == "https://rp.example.com"
    recorded(mark, type=events.TOKEN_ISSUED, client_id=spa.client.client_id, username="alice")


def test_cors_is_not_granted_to_unregistered_origins(browser, discovery, make_client):
    spa = make_client(name="SPA", client_type="public", allowed_origins=["https://rp.example.com"])
    response, _, _ = authorize(browser, discovery, spa)
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    answer = requests.post(discovery["token_endpoint"], data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": "v" * 64, "client_id": spa.client.client_id,
    }, headers={"Origin": "https://evil.example.com"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_consent_page_names_the_client_and_scopes_and_deny_returns_access_denied(browser, discovery, make_client):
    third_party = make_client(name="Third Party App", skip_consent=False)
    response, _, state = authorize(browser, discovery, third_party, scope="openid email orders:read")
    assert response.status_code == 200
    assert "Third Party App" in response.text
    assert "See your email address" in response.text and "orders:read" in response.text
    form = {name: value for name, value in
            __import__("re").findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text)}
    denied = browser.post(response.url, data=form, headers={"Referer": response.url}, allow_redirects=False,
                          timeout=10)
    assert denied.status_code == 302
    query = parse_qs(urlsplit(denied.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == [state]
    assert not get_grant_model().objects.exists()


def test_unauthenticated_browser_is_sent_to_login_with_next(discovery, rp):
    from authlib.integrations.requests_client import OAuth2Session

    oauth = OAuth2Session(rp.client.client_id, scope="openid", redirect_uri=REDIRECT_URI,
                          code_challenge_method="S256")
    url, _ = oauth.create_authorization_url(discovery["authorization_endpoint"], code_verifier="v" * 64)
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/?next=/o/authorize/")


def test_disabled_client_cannot_start_a_flow(browser, discovery, rp):
    from clients.services import client_disable

    client_disable(client=rp.client)
    assert Event.objects.filter(type=events.CLIENT_DISABLED, client_id=rp.client.client_id).count() == 1
    response, _, _ = authorize(browser, discovery, rp)
    assert response.status_code == 400
    assert "Location" not in response.headers
