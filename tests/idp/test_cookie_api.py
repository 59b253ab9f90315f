"""The first-party cookie token API: sign-in, refresh, sign-out and /api/me, each endpoint and each attack on it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
import uuid
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command
from django.test import Client as BrowserClient
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from audit import events
from audit.models import Event
from clients.models import Client
from clients.services import client_create
from idp.api import services
from idp.api_auth import IdpAccessTokenAuthentication
from idp.keys import active_signing_key, signing_key_ensure
from idp.models import GrantContext

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()

ACCESS = "idp_access"
REFRESH = "idp_refresh"
REFRESH_PATH = "/api/auth/refresh"
REDIRECT_URI = "https://rp.example.com/callback"
VERIFIER = "v" * 64


# --- Fixtures and helpers. ------------------------------------------------------------------------------------


@pytest.fixture
def keys(db):
    signing_key_ensure()


@pytest.fixture
def alice(keys, make_user):
    return make_user(username="alice", email="alice@example.com", roles=["admin", "orders:write"],
                     first_name="Alice", last_name="Liddell")


@pytest.fixture
def spa():
    """A browser that, unlike Django's default test client, is held to CSRF checks."""
    return BrowserClient(enforce_csrf_checks=True)


@pytest.fixture(scope="module")
def attacker_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def csrf_token(spa) -> str:
    return spa.get("/api/auth/csrf").json()["csrfToken"]


def post(spa, path, csrf=None, **body):
    headers = {"HTTP_X_CSRFTOKEN": csrf} if csrf else {}
    return spa.post(path, json.dumps(body) if body else "", content_type="application/json", **headers)


def sign_in(spa, password, username="alice"):
    """Sign in through the API; returns (the response, the rotated CSRF token)."""
    response = post(spa, "/api/auth/login", csrf_token(spa), username=username, password=password)
    assert response.status_code == 200, response.content
    return response, response.json()["csrfToken"]


def cookie(response, name):
    return response.cookies[name] if name in response.cookies else None


def me(client, token=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get("/api/me", **headers)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def rejections(reason: str) -> int:
    return Event.objects.filter(type=events.TOKEN_REJECTED, reason=reason).count()


def assert_rejected(response, reason: str) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="idp", error="invalid_token"'
    assert response.json()["error"] == "invalid_token"
    assert "no-store" in response["Cache-Control"]
    assert rejections(reason) == 1


def assert_cleared(response) -> None:
    for name, path in ((ACCESS, "/"), (REFRESH, REFRESH_PATH)):
        morsel = response.cookies[name]
        assert morsel.value == ""
        assert (morsel["max-age"], morsel["path"], morsel["samesite"], morsel["httponly"]) == (0, path, "Strict", True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def signed(claims: dict, **header) -> str:
    key = active_signing_key()
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, **header})


@pytest.fixture
def rp(keys):
    """A confidential relying party whose tokens are for another audience than the IdP's API."""
    return client_create(name="Orders web", client_type="confidential", grant_types=["authorization-code"],
                         redirect_uris=[REDIRECT_URI], allowed_scopes=["openid", "profile", "email", "roles"],
                         audiences=["https://orders.example.com"], skip_consent=True)


def code_flow_tokens(issued, user) -> dict:
    """A real token response for `user` at `issued`'s client, from the authorization-code flow with PKCE."""
    browser = BrowserClient()
    browser.force_login(user)
    challenge = _b64(hashlib.sha256(VERIFIER.encode()).digest())
    response = browser.get("/o/authorize/", {
        "client_id": issued.client.client_id, "response_type": "code", "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email roles", "code_challenge": challenge, "code_challenge_method": "S256",
        "state": "s-1", "nonce": "n-1",
    })
    assert response.status_code == 302, response.content
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    answer = browser.post("/o/token/", {"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": REDIRECT_URI, "code_verifier": VERIFIER},
                          HTTP_AUTHORIZATION="Basic " + base64.b64encode(
                              f"{issued.client.client_id}:{issued.client_secret}".encode()).decode())
    assert answer.status_code == 200, answer.content
    return answer.json()


# --- Sign-in. -------------------------------------------------------------------------------------------------


def test_login_sets_httponly_strict_cookies_with_the_refresh_cookie_limited_to_the_refresh_path(spa, alice, password):
    response, _ = sign_in(spa, password)

    access, refresh = cookie(response, ACCESS), cookie(response, REFRESH)
    assert (access["httponly"], access["samesite"], access["path"], access["secure"]) == (True, "Strict", "/", "")
    # The access cookie lives as long as the refresh token, so that sign-out can always name the family.
    assert access["max-age"] == refresh["max-age"]
    assert (refresh["httponly"], refresh["samesite"], refresh["path"], refresh["secure"]) == (
        True, "Strict", REFRESH_PATH, "")
    client = Client.objects.get(client_id="idp-web")
    assert client.refresh_token_idle_lifetime - 5 <= refresh["max-age"] <= client.refresh_token_idle_lifetime
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert {key: body[key] for key in ("username", "email", "name", "roles", "scope")} == {
        "username": "alice", "email": "alice@example.com", "name": "Alice Liddell",
        "roles": ["admin", "orders:write"], "scope": "openid profile email roles"}
    assert body["sub"] == str(alice.subject)
    assert access.value not in response.content.decode() and refresh.value not in response.content.decode()
    issued = Event.objects.get(type=events.TOKEN_ISSUED)
    assert (issued.user, issued.client_id, issued.detail["grant_type"]) == (alice, "idp-web", "first_party_login")
    assert issued.detail["jti"] == claims_of(access.value)["jti"]
    assert Event.objects.filter(type=events.LOGIN_SUCCEEDED, user=alice).count() == 1


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_login_accepts_a_json_or_a_form_body(spa, alice, password, encoding):
    token = csrf_token(spa)
    credentials = {"username": "alice", "password": password}
    if encoding == "json":
        response = spa.post("/api/auth/login", credentials, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    else:
        response = spa.post("/api/auth/login", credentials, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert cookie(response, ACCESS).value and cookie(response, REFRESH).value


def test_login_cookies_are_secure_and_prefixed_under_an_https_issuer(spa, alice, password, settings):
    settings.IDP_ISSUER_IS_HTTPS = True
    settings.IDP_ACCESS_COOKIE_NAME = "__Host-idp_access"
    settings.IDP_REFRESH_COOKIE_NAME = "__Secure-idp_refresh"
    token = spa.get("/api/auth/csrf", secure=True).json()["csrfToken"]
    response = spa.post("/api/auth/login", {"username": "alice", "password": password},
                        content_type="application/json", secure=True, HTTP_X_CSRFTOKEN=token,
                        HTTP_ORIGIN="https://testserver")
    assert response.status_code == 200, response.content
    headers = {morsel.key: morsel.OutputString() for morsel in response.cookies.values()}
    assert "; Secure" in headers["__Host-idp_access"] and "Path=/;" in headers["__Host-idp_access"]
    assert "Domain" not in headers["__Host-idp_access"]  # RFC 6265bis §4.1.3.2
    assert "; Secure" in headers["__Secure-idp_refresh"] and f"Path={REFRESH_PATH};" in headers["__Secure-idp_refresh"]
    for name in ("__Host-idp_access", "__Secure-idp_refresh"):
        assert "HttpOnly" in headers[name] and "SameSite=Strict" in headers[name]


def test_issued_access_token_is_an_rfc9068_jwt_verifiable_with_the_published_jwks(spa, alice, password, settings):
    response, _ = sign_in(spa, password)
    token = cookie(response, ACCESS).value
    header = jwt.get_unverified_header(token)
    jwks = jwt.PyJWKSet.from_dict(spa.get("/.well-known/jwks.json").json())
    key = next(jwk for jwk in jwks.keys if jwk.key_id == header["kid"])

    claims = jwt.decode(token, key, algorithms=[header["alg"]], audience=settings.IDP_API_AUDIENCE,
                        issuer=settings.IDP_ISSUER)

    assert header["typ"] == "at+jwt" and header["kid"] == active_signing_key().kid
    assert claims["sub"] == str(alice.subject)
    assert claims["client_id"] == "idp-web"
    assert claims["roles"] == ["admin", "orders:write"]
    assert claims["scope"] == "openid profile email roles"
    assert claims["exp"] - claims["iat"] == 300
    assert abs(claims["auth_time"] - time.time()) < 60
    assert "email" not in claims and "name" not in claims  # no personal data in access tokens


def test_refresh_token_is_opaque_and_stored_only_as_a_checksum(spa, alice, password):
    response, _ = sign_in(spa, password)
    value = cookie(response, REFRESH).value
    stored = RefreshToken.objects.get()
    assert value.count(".") == 0 and len(value) >= 43
    assert stored.token == "" and stored.token_checksum == hashlib.sha256(value.encode()).hexdigest()
    assert stored.application.client_id == "idp-web" and stored.token_family is not None
    assert GrantContext.objects.get(token_family=stored.token_family).redeemed_at is not None


@pytest.mark.parametrize("username, typed_password", [("alice", "wrong-password-1234"), ("nobody", "whatever-12345")])
def test_wrong_password_and_unknown_user_get_the_same_401_and_no_cookies(spa, alice, username, typed_password):
    response = post(spa, "/api/auth/login", csrf_token(spa), username=username, password=typed_password)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_credentials", "error_description":
                               "Sign-in failed. Check the username and password, or try again later."}
    assert ACCESS not in response.cookies and REFRESH not in response.cookies
    assert AccessToken.objects.count() == RefreshToken.objects.count() == 0
    reason = "bad_password" if username == "alice" else "unknown_user"
    assert Event.objects.filter(type=events.LOGIN_FAILED, reason=reason).count() == 1


def test_inactive_user_gets_the_same_401(spa, alice, password):
    alice.is_active = False
    alice.save()
    response = post(spa, "/api/auth/login", csrf_token(spa), username="alice", password=password)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"
    assert AccessToken.objects.count() == 0


def test_password_guessing_through_the_cookie_api_locks_the_account_even_for_the_right_password(
        spa, alice, password, settings):
    settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT = 3
    for attempt in range(3):
        post(spa, "/api/auth/login", csrf_token(spa), username="alice", password=f"guess-number-{attempt}")

    response = post(spa, "/api/auth/login", csrf_token(spa), username="alice", password=password)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"
    assert ACCESS not in response.cookies
    assert AccessToken.objects.count() == 0
    assert Event.objects.filter(type=events.LOGIN_FAILED, reason="locked").count() == 1


@pytest.mark.parametrize("body, content_type", [
    ("not json", "application/json"),
    ('["alice", "secret"]', "application/json"),
    ('{"username": "alice"}', "application/json"),
    ('{"username": 1, "password": 2}', "application/json"),
    ('{"username": "alice\\u0000", "password": "x"}', "application/json"),
    ("username=alice", "application/x-www-form-urlencoded"),
])
def test_malformed_login_body_is_a_400_invalid_request(spa, alice, body, content_type):
    response = spa.post("/api/auth/login", body, content_type=content_type, HTTP_X_CSRFTOKEN=csrf_token(spa))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert Event.objects.filter(type__in=[events.LOGIN_FAILED, events.LOGIN_SUCCEEDED]).count() == 0


def test_login_rotates_the_csrf_token_so_a_planted_one_stops_working(spa, alice, password):
    planted = csrf_token(spa)
    response = post(spa, "/api/auth/login", planted, username="alice", password=password)
    assert response.json()["csrfToken"] != planted
    assert post(spa, "/api/auth/refresh", planted).status_code == 403
    assert post(spa, "/api/auth/refresh", response.json()["csrfToken"]).status_code == 200


# --- CSRF on every POST. --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [None, "forged-csrf-token-value-that-matches-nothing-at-all-0123456789ab"])
def test_cross_site_login_without_the_csrf_token_is_forbidden_and_issues_nothing(spa, alice, password, sent):
    csrf_token(spa)
    response = post(spa, "/api/auth/login", sent, username="alice", password=password)
    assert response.status_code == 403
    assert ACCESS not in response.cookies and REFRESH not in response.cookies
    assert AccessToken.objects.count() == 0
    assert Event.objects.filter(type=events.LOGIN_SUCCEEDED).count() == 0
    assert Event.objects.filter(type=events.ACCESS_DENIED, reason="csrf").count() == 1


def test_cross_site_refresh_without_the_csrf_token_is_forbidden_and_rotates_nothing(spa, alice, password):
    sign_in(spa, password)
    response = post(spa, "/api/auth/refresh")
    assert response.status_code == 403
    assert ACCESS not in response.cookies and REFRESH not in response.cookies
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    assert AccessToken.objects.count() == 1
    assert Event.objects.filter(type=events.ACCESS_DENIED, reason="csrf").count() == 1


def test_cross_site_logout_without_the_csrf_token_is_forbidden_and_revokes_nothing(spa, alice, password):
    response, _ = sign_in(spa, password)
    answer = post(spa, "/api/auth/logout")
    assert answer.status_code == 403
    assert ACCESS not in answer.cookies
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    assert me(spa).status_code == 200
    assert Event.objects.filter(type=events.LOGOUT).count() == 0
    assert Event.objects.filter(type=events.ACCESS_DENIED, reason="csrf").count() == 1


def test_a_cookie_authenticated_unsafe_api_request_needs_the_csrf_token_but_a_bearer_one_does_not(
        spa, alice, password):
    access = cookie(sign_in(spa, password)[0], ACCESS).value
    factory = APIRequestFactory(enforce_csrf_checks=True)
    by_cookie = factory.post("/api/me", {}, format="json")
    by_cookie.COOKIES[ACCESS] = access
    with pytest.raises(exceptions.PermissionDenied):
        IdpAccessTokenAuthentication().authenticate(Request(by_cookie))
    by_bearer = factory.post("/api/me", {}, format="json", HTTP_AUTHORIZATION=f"Bearer {access}")
    user, verified = IdpAccessTokenAuthentication().authenticate(Request(by_bearer))
    assert user == alice and verified.claims["client_id"] == "idp-web"


# --- Refresh. -------------------------------------------------------------------------------------------------


def test_refresh_rotates_both_tokens_and_keeps_subject_auth_time_and_scope(spa, alice, password):
    response, token = sign_in(spa, password)
    old_access, old_refresh = cookie(response, ACCESS).value, cookie(response, REFRESH).value

    renewed = post(spa, "/api/auth/refresh", token)

    assert renewed.status_code == 200
    assert renewed.json() == {"expires_in": 300, "scope": "openid profile email roles"}
    assert "no-store" in renewed["Cache-Control"]
    new_access, new_refresh = cookie(renewed, ACCESS).value, cookie(renewed, REFRESH).value
    assert new_refresh != old_refresh and new_access != old_access
    assert cookie(renewed, REFRESH)["path"] == REFRESH_PATH
    assert cookie(renewed, ACCESS)["max-age"] == cookie(renewed, REFRESH)["max-age"]
    old, new = claims_of(old_access), claims_of(new_access)
    assert (new["sub"], new["auth_time"], new["scope"], new["aud"]) == (old["sub"], old["auth_time"], old["scope"],
                                                                       old["aud"])
    assert new["jti"] != old["jti"]
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    assert me(spa).status_code == 200
    refreshed = Event.objects.get(type=events.TOKEN_ISSUED, detail__grant_type="refresh_token")
    assert (refreshed.client_id, refreshed.detail["jti"]) == ("idp-web", new["jti"])


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family_and_clears_the_cookies(spa, alice, password):
    response, token = sign_in(spa, password)
    stolen = cookie(response, REFRESH).value
    renewed = post(spa, "/api/auth/refresh", token)
    current_access, current_refresh = cookie(renewed, ACCESS).value, cookie(renewed, REFRESH).value

    spa.cookies[REFRESH] = stolen
    replay = post(spa, "/api/auth/refresh", token)

    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_grant"
    assert_cleared(replay)
    family = RefreshToken.objects.values_list("token_family", flat=True).distinct()
    assert family.count() == 1 and RefreshToken.objects.filter(revoked__isnull=True).count() == 0
    assert AccessToken.objects.count() == 0
    reused = Event.objects.get(type=events.TOKEN_REFRESH_REUSED)
    assert (reused.client_id, reused.user, reused.detail["token_family"]) == ("idp-web", alice, str(family.get()))
    assert_rejected(me(BrowserClient(), current_access), "revoked")
    rejected = Event.objects.get(type=events.TOKEN_REJECTED)
    assert (rejected.client_id, rejected.detail["jti"]) == ("idp-web", claims_of(current_access)["jti"])
    spa.cookies[REFRESH] = current_refresh
    assert post(spa, "/api/auth/refresh", token).status_code == 401


def test_refresh_without_a_refresh_cookie_is_refused_and_clears_the_cookies(spa, keys):
    response = post(spa, "/api/auth/refresh", csrf_token(spa))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_grant"
    assert_cleared(response)


def test_a_refresh_token_of_another_client_cannot_be_refreshed_as_first_party(spa, alice, rp):
    stolen = code_flow_tokens(rp, alice)
    spa.cookies[REFRESH] = stolen["refresh_token"]
    response = post(spa, "/api/auth/refresh", csrf_token(spa))
    assert response.status_code == 401
    assert_cleared(response)
    assert not AccessToken.objects.filter(application__client_id="idp-web").exists()


def test_refresh_family_ends_at_its_absolute_lifetime_however_often_it_is_used(spa, alice, password):
    response, token = sign_in(spa, password)
    client = Client.objects.get(client_id="idp-web")
    GrantContext.objects.update(redeemed_at=timezone.now() - timezone.timedelta(seconds=client.refresh_token_lifetime))
    answer = post(spa, "/api/auth/refresh", token)
    assert answer.status_code == 401
    assert_cleared(answer)


def test_refresh_token_left_unused_past_the_idle_lifetime_is_refused(spa, alice, password):
    _, token = sign_in(spa, password)
    client = Client.objects.get(client_id="idp-web")
    RefreshToken.objects.update(
        created=timezone.now() - timezone.timedelta(seconds=client.refresh_token_idle_lifetime))
    assert post(spa, "/api/auth/refresh", token).status_code == 401


# --- Sign-out. ------------------------------------------------------------------------------------------------


def test_logout_revokes_the_family_and_clears_both_cookies(spa, alice, password):
    response, token = sign_in(spa, password)
    access, refresh = cookie(response, ACCESS).value, cookie(response, REFRESH).value

    answer = post(spa, "/api/auth/logout", token)

    assert answer.status_code == 204
    assert_cleared(answer)
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 0
    assert AccessToken.objects.count() == 0
    assert Event.objects.filter(type=events.LOGOUT, user=alice).count() == 1
    assert_rejected(me(BrowserClient(), access), "revoked")
    spa.cookies[REFRESH] = refresh
    assert post(spa, "/api/auth/refresh", token).status_code == 401


def test_logout_with_an_expired_access_cookie_still_revokes_the_family(spa, alice, password, monkeypatch):
    with monkeypatch.context() as past:
        real_time = time.time
        past.setattr(time, "time", lambda: real_time() - 3600)  # the token is signed an hour ago
        response, token = sign_in(spa, password)
    assert claims_of(cookie(response, ACCESS).value)["exp"] < time.time()

    answer = post(spa, "/api/auth/logout", token)

    assert answer.status_code == 204
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 0


def test_logout_without_any_cookie_answers_204_and_clears_the_cookies(spa, keys):
    response = post(spa, "/api/auth/logout", csrf_token(spa))
    assert response.status_code == 204
    assert_cleared(response)


def test_logout_with_a_forged_access_cookie_revokes_nothing_and_records_the_rejection(spa, alice, password,
                                                                                        attacker_key):
    response, token = sign_in(spa, password)
    genuine = claims_of(cookie(response, ACCESS).value)
    other = BrowserClient(enforce_csrf_checks=True)
    other.cookies[ACCESS] = jwt.encode(genuine, attacker_key, algorithm="RS256",
                                       headers={"kid": active_signing_key().kid, "typ": "at+jwt"})
    answer = post(other, "/api/auth/logout", csrf_token(other))
    assert answer.status_code == 204
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    assert rejections("bad_signature") == 1
    assert me(spa).status_code == 200


# --- /api/me. -------------------------------------------------------------------------------------------------


def test_me_answers_with_the_profile_by_cookie_and_by_bearer_header(spa, alice, password):
    response, _ = sign_in(spa, password)
    access = cookie(response, ACCESS).value
    expected = {"sub": str(alice.subject), "username": "alice", "email": "alice@example.com",
                "name": "Alice Liddell", "roles": ["admin", "orders:write"], "scope": "openid profile email roles"}

    by_cookie = me(spa)
    by_bearer = me(BrowserClient(), access)

    assert by_cookie.status_code == by_bearer.status_code == 200
    assert by_cookie.json() == by_bearer.json() == expected
    assert "no-store" in by_cookie["Cache-Control"]


def test_me_reads_the_token_row_and_the_roles_and_nothing_else(spa, alice, password, django_assert_num_queries):
    sign_in(spa, password)
    me(spa)  # the key cache is warm from here on
    with django_assert_num_queries(2):
        assert me(spa).status_code == 200


def test_me_without_credentials_is_401_with_a_bare_bearer_challenge(keys):
    response = me(BrowserClient())
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="idp"'  # RFC 6750 §3.1: no error without a token
    assert Event.objects.filter(type=events.TOKEN_REJECTED).count() == 0


def test_me_refuses_a_token_issued_by_the_token_endpoint_for_another_audience(alice, rp):
    tokens = code_flow_tokens(rp, alice)
    assert claims_of(tokens["access_token"])["aud"] == "https://orders.example.com"
    assert_rejected(me(BrowserClient(), tokens["access_token"]), "wrong_audience")


def test_me_refuses_an_id_token(alice, rp):
    tokens = code_flow_tokens(rp, alice)
    assert_rejected(me(BrowserClient(), tokens["id_token"]), "wrong_audience")


def test_me_refuses_an_id_token_shaped_token_even_for_the_api_audience(spa, alice, password):
    genuine = claims_of(cookie(sign_in(spa, password)[0], ACCESS).value)
    assert_rejected(me(BrowserClient(), signed(genuine, typ="JWT")), "wrong_type")


def _alg_none(claims, attacker_key):
    return _compact({"alg": "none", "typ": "at+jwt", "kid": active_signing_key().kid}, claims) + "."


def _hs256_keyed_with_our_public_key(claims, attacker_key):
    key = active_signing_key()
    secret = key.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = _compact({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, claims)
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _attacker_key_with_our_kid(claims, attacker_key):
    return jwt.encode(claims, attacker_key, algorithm="RS256", headers={"typ": "at+jwt",
                                                                        "kid": active_signing_key().kid})


def _attacker_key_with_its_own_kid(claims, attacker_key):
    return jwt.encode(claims, attacker_key, algorithm="RS256", headers={"typ": "at+jwt", "kid": "attacker-1"})


def _tampered_roles(claims, attacker_key):
    header, _, signature = signed(claims, typ="at+jwt").split(".")
    payload = _b64(json.dumps({**claims, "roles": ["admin", "superuser"]}).encode())
    return f"{header}.{payload}.{signature}"


def _real_key(**changes):
    def mint(claims, attacker_key):
        return signed({**claims, **changes}, typ="at+jwt")

    return mint


FORGERIES = {
    "alg-none": (_alg_none, "bad_signature"),
    "hs256-keyed-with-our-public-key": (_hs256_keyed_with_our_public_key, "bad_signature"),
    "attacker-key-with-our-kid": (_attacker_key_with_our_kid, "bad_signature"),
    "attacker-key-with-its-own-kid": (_attacker_key_with_its_own_kid, "bad_signature"),
    "tampered-roles": (_tampered_roles, "bad_signature"),
    "expired": (_real_key(exp=int(time.time()) - 3600, iat=int(time.time()) - 3900, nbf=int(time.time()) - 3900),
                "expired"),
    "not-yet-valid": (_real_key(nbf=int(time.time()) + 3600), "expired"),
    "another-issuer": (_real_key(iss="https://evil.example.com"), "wrong_issuer"),
    "another-audience": (_real_key(aud="https://orders.example.com"), "wrong_audience"),
    "never-issued-jti": (_real_key(jti=str(uuid.uuid4())), "revoked"),
}


@pytest.mark.parametrize("forge, reason", FORGERIES.values(), ids=FORGERIES.keys())
def test_me_refuses_forged_and_misused_tokens_and_records_why(spa, alice, password, attacker_key, forge, reason):
    genuine = cookie(sign_in(spa, password)[0], ACCESS).value
    forged = forge(claims_of(genuine), attacker_key)

    assert_rejected(me(BrowserClient(), forged), reason)
    assert me(BrowserClient(), genuine).status_code == 200


@pytest.mark.parametrize("presented", ["not-a-jwt", "a.b.c", "Zm9v.YmFy.YmF6", "x" * 9000])
def test_me_refuses_malformed_tokens(keys, presented):
    client = BrowserClient()
    client.cookies[ACCESS] = presented
    assert_rejected(client.get("/api/me"), "malformed")


def test_me_refuses_a_bearer_header_that_is_not_rfc6750_syntax(keys):
    assert_rejected(BrowserClient().get("/api/me", HTTP_AUTHORIZATION="Bearer a b"), "malformed")


def test_me_refuses_the_token_of_a_deactivated_user_or_a_disabled_first_party_client(spa, alice, password):
    access = cookie(sign_in(spa, password)[0], ACCESS).value
    Client.objects.filter(client_id="idp-web").update(enabled=False)
    assert_rejected(me(BrowserClient(), access), "revoked")


# --- The first-party client. ----------------------------------------------------------------------------------


def test_bootstrap_ensures_the_first_party_client_once(keys):
    call_command("bootstrap", stdout=io.StringIO(), stderr=io.StringIO())
    call_command("bootstrap", stdout=io.StringIO(), stderr=io.StringIO())
    client = Client.objects.get(client_id="idp-web")
    assert client.client_type == Client.CLIENT_PUBLIC and client.skip_authorization
    assert client.scope_list == ["openid", "profile", "email", "roles"]
    assert client.default_audience == client.audiences[0]
    assert client.redirect_uris == ""
    assert Event.objects.filter(type=events.CLIENT_CREATED, client_id="idp-web").count() == 1


def test_login_creates_the_first_party_client_when_it_is_missing(spa, alice, password):
    assert not Client.objects.filter(client_id="idp-web").exists()
    sign_in(spa, password)
    assert Client.objects.filter(client_id="idp-web").count() == 1


def test_first_party_client_ensure_reads_the_winner_of_a_concurrent_insert(keys, monkeypatch):
    winner, _ = services.first_party_client_ensure()
    # Another process inserts between this one's lookup and its insert: the lookup sees nothing, the insert collides.
    lookups = []

    def missing(*, client_id):
        lookups.append(client_id)
        return None

    monkeypatch.setattr(services, "client_cached_get", missing)

    client, created = services.first_party_client_ensure()

    assert (client, created) == (winner, False)
    assert len(lookups) == 1 and Client.objects.count() == 1


def test_the_first_party_client_cannot_start_an_authorization_request(alice):
    services.first_party_client_ensure()
    browser = BrowserClient()
    browser.force_login(alice)
    response = browser.get("/o/authorize/", {
        "client_id": "idp-web", "response_type": "code", "redirect_uri": "https://evil.example.com/cb",
        "scope": "openid", "code_challenge": _b64(hashlib.sha256(VERIFIER.encode()).digest()),
        "code_challenge_method": "S256"})
    assert response.status_code == 400
    assert "evil.example.com" not in response.get("Location", "")
    assert not GrantContext.objects.exists()


def test_a_disabled_first_party_client_signs_nobody_in(spa, alice, password):
    services.first_party_client_ensure()
    Client.objects.filter(client_id="idp-web").update(enabled=False)
    response = post(spa, "/api/auth/login", csrf_token(spa), username="alice", password=password)
    assert response.status_code == 503
    assert ACCESS not in response.cookies
    assert AccessToken.objects.count() == 0


# --- Over real HTTP, with a real browser's cookie jar. ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_single_page_client_signs_in_refreshes_and_signs_out_over_http(live_server, settings, make_user, password):
    settings.IDP_ISSUER = live_server.url
    settings.IDP_API_AUDIENCE = f"{live_server.url}/api"
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    signing_key_ensure()
    make_user(username="alice", email="alice@example.com", roles=["admin"])
    browser = requests.Session()
    csrf = browser.get(f"{live_server.url}/api/auth/csrf", timeout=10).json()["csrfToken"]

    login = browser.post(f"{live_server.url}/api/auth/login", json={"username": "alice", "password": password},
                         headers={"X-CSRFToken": csrf}, timeout=10)

    assert login.status_code == 200, login.text
    raw = SimpleCookie()
    for header in login.raw.headers.getlist("Set-Cookie"):
        raw.load(header)
    assert raw[ACCESS]["httponly"] and raw[ACCESS]["samesite"] == "Strict" and raw[ACCESS]["path"] == "/"
    assert raw[REFRESH]["httponly"] and raw[REFRESH]["samesite"] == "Strict" and raw[REFRESH]["path"] == REFRESH_PATH
    jwks = jwt.PyJWKClient(f"{live_server.url}/.well-known/jwks.json", cache_keys=False)
    access = browser.cookies.get(ACCESS)
    claims = jwt.decode(access, jwks.get_signing_key_from_jwt(access), algorithms=["RS256", "ES256"],
                        audience=settings.IDP_API_AUDIENCE, issuer=live_server.url)
    assert claims["client_id"] == "idp-web"
    # The browser sends the refresh cookie to the refresh endpoint only.
    to_me = browser.prepare_request(requests.Request("GET", f"{live_server.url}/api/me"))
    assert ACCESS in to_me.headers["Cookie"] and REFRESH not in to_me.headers["Cookie"]
    assert browser.get(f"{live_server.url}/api/me", timeout=10).json()["username"] == "alice"

    csrf = login.json()["csrfToken"]
    old_refresh = browser.cookies.get(REFRESH)
    renewed = browser.post(f"{live_server.url}/api/auth/refresh", headers={"X-CSRFToken": csrf}, timeout=10)
    assert renewed.status_code == 200
    assert browser.cookies.get(REFRESH) != old_refresh

    logout = browser.post(f"{live_server.url}/api/auth/logout", headers={"X-CSRFToken": csrf}, timeout=10)
    assert logout.status_code == 204
    assert browser.cookies.get(ACCESS) is None and browser.cookies.get(REFRESH) is None
    assert browser.get(f"{live_server.url}/api/me", timeout=10).status_code == 401
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 0

