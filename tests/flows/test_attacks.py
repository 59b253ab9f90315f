"""Attacks on the authorization server over real HTTP, each named after what it tries and shown to be refused."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from authlib.common.urls import add_params_to_uri
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from audit import events
from audit.models import Event
from idp.keys import active_signing_key
from tests.flows.conftest import (
    REDIRECT_URI,
    audit_mark,
    authorize,
    create_s256_code_challenge,
    recorded,
    recorded_in_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()

VERIFIER = "v" * 64
# RFC 6749 §5.2: the only `error` values a token-endpoint error response may carry (plus RFC 8707's invalid_target).
TOKEN_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
                "invalid_scope", "invalid_target"}
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


# --- Helpers. ---------------------------------------------------------------------------------------------------


def _row_counts() -> tuple[int, int, int]:
    return AccessToken.objects.count(), RefreshToken.objects.count(), Grant.objects.count()


def _code(browser, discovery, issued) -> str:
    response, _, _ = authorize(browser, discovery, issued, code_verifier=VERIFIER)
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def _redeem(discovery, issued, code, *, redirect_uri=REDIRECT_URI, code_verifier=VERIFIER) -> requests.Response:
    return requests.post(
        discovery["token_endpoint"], auth=(issued.client.client_id, issued.client_secret), timeout=10,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
              "code_verifier": code_verifier},
    )


def _refresh(discovery, issued, refresh_token) -> requests.Response:
    return requests.post(discovery["token_endpoint"], auth=(issued.client.client_id, issued.client_secret),
                         data={"grant_type": "refresh_token", "refresh_token": refresh_token}, timeout=10)


def _signed_in_tokens(browser, discovery, issued) -> dict:
    response = _redeem(discovery, issued, _code(browser, discovery, issued))
    assert response.status_code == 200, response.text
    return response.json()


def _userinfo(discovery, access_token) -> requests.Response:
    return requests.get(discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10)


def _introspect(discovery, issued, token, **extra) -> requests.Response:
    return requests.post(discovery["introspection_endpoint"], auth=(issued.client.client_id, issued.client_secret),
                         data={"token": token, **extra}, timeout=10)


def _assert_token_error(response, status, error):
    """An RFC 6749 §5.2 error response: the status, a JSON object with that `error`, never cached."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers.get("Cache-Control") == "no-store"
    body = response.json()
    assert body["error"] == error, body
    assert body["error"] in TOKEN_ERRORS
    assert isinstance(body.get("error_description", ""), str)


def _assert_refused_everywhere(discovery, rp, token, reason):
    """Userinfo answers 401 and introspection `inactive`, and each records token.rejected with `reason`."""
    mark = audit_mark()
    assert _userinfo(discovery, token).status_code == 401
    introspection = _introspect(discovery, rp, token)
    assert introspection.status_code == 200
    assert introspection.json() == {"active": False}
    at_userinfo, at_introspection = recorded_in_turn(mark, (events.TOKEN_REJECTED, reason),
                                                     (events.TOKEN_REJECTED, reason))
    assert at_userinfo.detail["endpoint"] == "userinfo"
    assert (at_introspection.detail["endpoint"], at_introspection.client_id) == ("introspection", rp.client.client_id)
    assert token not in json.dumps([at_userinfo.detail, at_introspection.detail])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


@pytest.fixture(scope="module")
def attacker_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def alice_tokens(browser, discovery, rp):
    """A real token response for alice at the rp, obtained through the code flow."""
    return _signed_in_tokens(browser, discovery, rp)


# --- 1. Redirect-URI manipulation. ------------------------------------------------------------------------------


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example.com/callback",
    "https://rp.example.com/callback/extra",
    "https://rp.example.com/callback?x=1",
    "https://rp.example.com:8443/callback",
    "https://rp.example.com@evil.example.com/callback",
], ids=["other-host", "path-suffix", "extra-query", "other-port", "userinfo-trick"])
def test_unregistered_redirect_uri_gets_an_error_page_instead_of_a_redirect(browser, discovery, rp, redirect_uri):
    before = _row_counts()
    response, _, _ = authorize(browser, discovery, rp, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "http-equiv" not in response.text.lower()
    assert redirect_uri not in response.text
    assert "evil.example.com" not in response.text
    assert _row_counts() == before


def test_code_redeemed_with_another_redirect_uri_than_it_was_issued_for_is_refused(browser, discovery, rp):
    code = _code(browser, discovery, rp)
    mark = audit_mark()
    response = _redeem(discovery, rp, code, redirect_uri="https://rp.example.com/callback/extra")
    assert AccessToken.objects.count() == 0
    assert RefreshToken.objects.count() == 0
    # RFC 6749 §5.2: a redirect URI that does not match the authorization request's is invalid_grant.
    _assert_token_error(response, 400, "invalid_grant")
    recorded(mark, type=events.TOKEN_FAILED, reason="redirect_mismatch", client_id=rp.client.client_id)


# --- 2. PKCE downgrade. -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pkce", [
    {"code_challenge": VERIFIER, "code_challenge_method": "plain"},
    {"code_challenge": VERIFIER},
    {},
], ids=["plain", "challenge-without-method", "no-challenge"])
def test_authorization_request_without_s256_pkce_is_refused(browser, discovery, rp, pkce):
    url = add_params_to_uri(discovery["authorization_endpoint"], {
        "response_type": "code", "client_id": rp.client.client_id, "redirect_uri": REDIRECT_URI,
        "scope": "openid", "state": "st4te", "nonce": "n0nce", **pkce,
    })
    response = browser.get(url, allow_redirects=False, timeout=10)
    # RFC 7636 §4.4.1 and RFC 9700 §2.1.1: the error goes back to the registered redirect URI.
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = parse_qs(urlsplit(location).query)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == ["st4te"]
    assert "code" not in params
    assert Grant.objects.count() == 0


def test_code_redeemed_with_a_wrong_code_verifier_is_refused(browser, discovery, rp):
    code = _code(browser, discovery, rp)
    mark = audit_mark()
    response = _redeem(discovery, rp, code, code_verifier="w" * 64)
    _assert_token_error(response, 400, "invalid_grant")
    assert AccessToken.objects.count() == 0
    assert RefreshToken.objects.count() == 0
    event = recorded(mark, type=events.TOKEN_FAILED, reason="invalid_pkce", client_id=rp.client.client_id)
    assert "w" * 64 not in json.dumps(event.detail)


# --- 3 and 4. Stolen and replayed codes. ------------------------------------------------------------------------


def test_replayed_code_is_refused_and_revokes_the_tokens_issued_from_it(browser, discovery, rp):
    code = _code(browser, discovery, rp)
    first = _redeem(discovery, rp, code)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert _userinfo(discovery, tokens["access_token"]).status_code == 200
    family = RefreshToken.objects.get().token_family
    mark = audit_mark()

    _assert_token_error(_redeem(discovery, rp, code), 400, "invalid_grant")

    replay = recorded(mark, type=events.TOKEN_FAILED, reason="code_replay", client_id=rp.client.client_id)
    assert replay.detail["token_family"] == str(family)
    _assert_refused_everywhere(discovery, rp, tokens["access_token"], "revoked")
    mark = audit_mark()
    _assert_token_error(_refresh(discovery, rp, tokens["refresh_token"]), 400, "invalid_grant")
    # The family was revoked with the replayed code, so its refresh token is now a revoked one presented again.
    recorded(mark, type=events.TOKEN_REFRESH_REUSED, reason="refresh_reused", client_id=rp.client.client_id)
    assert AccessToken.objects.count() == 0


def test_code_stolen_by_another_client_cannot_be_redeemed_with_its_credentials(browser, discovery, rp, make_client):
    other = make_client(name="Other")
    code = _code(browser, discovery, rp)
    mark = audit_mark()
    _assert_token_error(_redeem(discovery, other, code), 400, "invalid_grant")
    assert AccessToken.objects.count() == 0
    assert RefreshToken.objects.count() == 0
    recorded(mark, type=events.TOKEN_FAILED, reason="invalid_grant", client_id=other.client.client_id)
    # The attempt spent nothing: the client the code was issued to still redeems it.
    mark = audit_mark()
    assert _redeem(discovery, rp, code).status_code == 200
    recorded(mark, type=events.TOKEN_ISSUED, client_id=rp.client.client_id)


# --- 5. Refresh-token reuse. ------------------------------------------------------------------------------------


def test_refresh_token_reuse_revokes_the_whole_family(discovery, rp, alice_tokens):
    rotated = _refresh(discovery, rp, alice_tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    newest = rotated.json()
    assert newest["refresh_token"] != alice_tokens["refresh_token"]
    assert _userinfo(discovery, newest["access_token"]).status_code == 200
    family = RefreshToken.objects.get(revoked__isnull=True).token_family
    mark = audit_mark()

    _assert_token_error(_refresh(discovery, rp, alice_tokens["refresh_token"]), 400, "invalid_grant")

    reuse = recorded(mark, type=events.TOKEN_REFRESH_REUSED, reason="refresh_reused", client_id=rp.client.client_id,
                     username="alice")
    assert reuse.detail["token_family"] == str(family)
    assert Event.objects.filter(type=events.ALERT_REFRESH_TOKEN_REUSE, detail__token_family=str(family)).exists()
    mark = audit_mark()
    _assert_token_error(_refresh(discovery, rp, newest["refresh_token"]), 400, "invalid_grant")
    recorded(mark, type=events.TOKEN_REFRESH_REUSED, reason="refresh_reused")
    _assert_refused_everywhere(discovery, rp, newest["access_token"], "revoked")
    assert AccessToken.objects.count() == 0


# --- 6. Forged and misused tokens at userinfo and introspection. ---------------------------------------------------


def _alg_none(claims, attacker_key):
    key = active_signing_key()
    return _compact({"alg": "none", "typ": "at+jwt", "kid": key.kid}, claims) + "."


def _hs256_with_public_key_as_secret(claims, attacker_key):
    key = active_signing_key()
    secret = key.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = _compact({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, claims)
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _unknown_kid(claims, attacker_key):
    return jwt.encode(claims, attacker_key, algorithm="RS256", headers={"typ": "at+jwt", "kid": "attacker-key-1"})


def _with_header(**extra):
    def forge(claims, attacker_key):
        headers = {"typ": "at+jwt", "kid": active_signing_key().kid, **extra}
        if extra.get("jwk") == "attacker":
            headers["jwk"] = jwt.algorithms.RSAAlgorithm.to_jwk(attacker_key.public_key(), as_dict=True)
        return jwt.encode(claims, attacker_key, algorithm="RS256", headers=headers)

    return forge


def _real_key(**changes):
    def mint(claims, attacker_key):
        key = active_signing_key()
        return jwt.encode({**claims, **changes}, key.private_key, algorithm=key.algorithm,
                          headers={"typ": "at+jwt", "kid": key.kid})

    return mint


# Each forgery, and the reason its refusal is recorded with.
FORGERIES = {
    "alg-none": (_alg_none, "bad_signature"),
    "hs256-keyed-with-public-pem": (_hs256_with_public_key_as_secret, "bad_signature"),
    "unknown-kid": (_unknown_kid, "bad_signature"),
    "jku-to-attacker-jwks": (_with_header(jku="https://evil.example.com/jwks.json"), "bad_signature"),
    "x5u-to-attacker-cert": (_with_header(x5u="https://evil.example.com/cert.pem"), "bad_signature"),
    "embedded-attacker-jwk": (_with_header(jwk="attacker"), "bad_signature"),
    "real-key-wrong-audience": (_real_key(aud="https://evil.example.com"), "wrong_audience"),
    "real-key-wrong-issuer": (_real_key(iss="https://evil.example.com"), "wrong_issuer"),
}


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_access_token_is_refused_at_userinfo_and_inactive_at_introspection(discovery, rp, alice_tokens,
                                                                                  attacker_key, forgery):
    forge, reason = forgery
    genuine = jwt.decode(alice_tokens["access_token"], options={"verify_signature": False})
    forged = forge({**genuine, "jti": str(uuid.uuid4()), "aud": [genuine["aud"], rp.client.client_id]},
                   attacker_key)
    before = _row_counts()

    _assert_refused_everywhere(discovery, rp, forged, reason)

    assert _row_counts() == before
    assert _userinfo(discovery, alice_tokens["access_token"]).status_code == 200


def test_id_token_presented_as_access_token_is_refused(discovery, rp, alice_tokens):
    _assert_refused_everywhere(discovery, rp, alice_tokens["id_token"], "wrong_type")
    assert _userinfo(discovery, alice_tokens["access_token"]).status_code == 200


def test_expired_access_token_is_refused_at_userinfo_and_inactive_at_introspection(browser, discovery, make_client):
    short_lived = make_client(name="Short-lived", access_token_lifetime=1)
    tokens = _signed_in_tokens(browser, discovery, short_lived)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1
    time.sleep(2)
    _assert_refused_everywhere(discovery, short_lived, tokens["access_token"], "expired")


# --- 7 and 8. Introspection: who may ask, and about what. -----------------------------------------------------------


def _assert_client_authentication_refused(response, since, client_id):
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers
    assert response.headers.get("Cache-Control") == "no-store"
    assert "active" not in response.json()
    event = recorded(since, type=events.TOKEN_FAILED, reason="invalid_client", client_id=client_id)
    assert event.detail["endpoint"] == "introspection"


def test_public_client_cannot_introspect_with_the_device_code_shortcut(discovery, make_client, alice_tokens):
    spa = make_client(name="SPA", client_type="public")
    mark = audit_mark()
    response = requests.post(discovery["introspection_endpoint"], timeout=10, data={
        "token": alice_tokens["access_token"], "client_id": spa.client.client_id, "grant_type": DEVICE_CODE_GRANT,
    })
    _assert_client_authentication_refused(response, mark, spa.client.client_id)


def test_introspection_without_client_authentication_is_refused(discovery, alice_tokens):
    mark = audit_mark()
    response = requests.post(discovery["introspection_endpoint"], data={"token": alice_tokens["access_token"]},
                             timeout=10)
    _assert_client_authentication_refused(response, mark, "")


def test_introspection_with_a_wrong_client_secret_is_refused(discovery, rp, alice_tokens):
    mark = audit_mark()
    response = requests.post(discovery["introspection_endpoint"], auth=(rp.client.client_id, "not-the-secret"),
                             data={"token": alice_tokens["access_token"]}, timeout=10)
    _assert_client_authentication_refused(response, mark, rp.client.client_id)
    assert "not-the-secret" not in json.dumps(list(Event.objects.values_list("detail", flat=True)))


def test_client_secret_in_the_query_string_does_not_authenticate_at_introspection(discovery, rp, alice_tokens):
    # RFC 6749 §2.3.1: client credentials MUST NOT be sent in the request URI, which access logs and proxies keep.
    # Refused as the token and revocation endpoints refuse any query parameter, before the credentials are looked at.
    mark = audit_mark()
    response = requests.post(discovery["introspection_endpoint"], timeout=10,
                             params={"client_id": rp.client.client_id, "client_secret": rp.client_secret},
                             data={"token": alice_tokens["access_token"]})
    _assert_token_error(response, 400, "invalid_request")
    assert "active" not in response.json()
    event = recorded(mark, type=events.TOKEN_FAILED, reason="invalid_request", client_id="")
    assert event.detail["endpoint"] == "introspection"
    assert rp.client_secret not in json.dumps(list(Event.objects.values_list("detail", flat=True)))
    # The same credentials in the body, as RFC 6749 §2.3.1 allows, do authenticate.
    response = requests.post(discovery["introspection_endpoint"], timeout=10, data={
        "token": alice_tokens["access_token"], "client_id": rp.client.client_id, "client_secret": rp.client_secret})
    assert response.json()["active"] is True


def test_client_cannot_introspect_a_token_not_meant_for_it(discovery, rp, service, alice_tokens):
    assert service.client.client_id not in json.dumps(
        jwt.decode(alice_tokens["access_token"], options={"verify_signature": False})["aud"])
    mark = audit_mark()
    response = _introspect(discovery, service, alice_tokens["access_token"])
    assert response.status_code == 200
    assert response.json() == {"active": False}
    response = _introspect(discovery, service, alice_tokens["refresh_token"], token_type_hint="refresh_token")
    assert response.json() == {"active": False}
    for event in recorded_in_turn(mark, (events.TOKEN_REJECTED, "wrong_audience"),
                                  (events.TOKEN_REJECTED, "wrong_audience")):
        assert (event.client_id, event.detail["issued_to"]) == (service.client.client_id, rp.client.client_id)


def test_client_introspecting_its_own_token_learns_its_claims(discovery, rp, alice_tokens):
    mark = audit_mark()
    response = _introspect(discovery, rp, alice_tokens["access_token"])
    assert audit_mark() == mark  # a live token is no refusal: nothing to record
    assert response.status_code == 200
    answer = response.json()
    assert answer["active"] is True
    assert answer["client_id"] == rp.client.client_id
    assert answer["aud"] == "https://orders.example.com"
    assert set(answer["scope"].split()) == {"openid", "profile", "email", "roles"}
    assert answer["sub"]
    assert answer["exp"] > time.time()


# --- 9. Token-endpoint hygiene. -----------------------------------------------------------------------------------


def test_token_responses_are_never_cached(discovery, service):
    mark = audit_mark()
    response = requests.post(discovery["token_endpoint"], auth=(service.client.client_id, service.client_secret),
                             data={"grant_type": "client_credentials", "scope": "orders:read"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    issued = recorded(mark, type=events.TOKEN_ISSUED, client_id=service.client.client_id)
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert issued.detail["jti"] == claims["jti"]


def test_wrong_client_secret_is_refused_as_invalid_client(discovery, service):
    mark = audit_mark()
    response = requests.post(discovery["token_endpoint"], auth=(service.client.client_id, "not-the-secret"),
                             data={"grant_type": "client_credentials"}, timeout=10)
    _assert_token_error(response, 401, "invalid_client")
    assert "WWW-Authenticate" in response.headers
    assert AccessToken.objects.count() == 0
    event = recorded(mark, type=events.TOKEN_FAILED, reason="invalid_client", client_id=service.client.client_id)
    assert "not-the-secret" not in json.dumps(event.detail)


def test_wrong_client_secret_challenge_names_the_basic_scheme_the_client_used(discovery, service):
    response = requests.post(discovery["token_endpoint"], auth=(service.client.client_id, "not-the-secret"),
                             data={"grant_type": "client_credentials"}, timeout=10)
    # RFC 6749 §5.2: the WWW-Authenticate header MUST match the authentication scheme the client used.
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("grant_type", ["implicit", DEVICE_CODE_GRANT], ids=["implicit", "device-code"])
def test_grant_types_the_idp_does_not_offer_are_refused_as_unsupported(discovery, rp, grant_type):
    mark = audit_mark()
    response = requests.post(discovery["token_endpoint"], auth=(rp.client.client_id, rp.client_secret),
                             data={"grant_type": grant_type, "device_code": "guessed"}, timeout=10)
    assert AccessToken.objects.count() == 0
    _assert_token_error(response, 400, "unsupported_grant_type")
    event = recorded(mark, type=events.TOKEN_FAILED, reason="unsupported_grant_type", client_id=rp.client.client_id)
    assert event.detail["grant_type"] == grant_type


def test_password_grant_is_refused_without_revealing_whether_the_password_is_right(discovery, make_client,
                                                                                    browser, password):
    # A public client's client_id is no secret; anyone can present it.
    spa = make_client(name="SPA", client_type="public")

    def attempt(guess):
        return requests.post(discovery["token_endpoint"], timeout=10, data={
            "grant_type": "password", "username": "alice", "password": guess, "client_id": spa.client.client_id,
        })

    mark = audit_mark()
    right, wrong = attempt(password), attempt("wrong-password-guess")
    assert AccessToken.objects.count() == 0
    # RFC 9700 §2.4: the password grant is not offered, so it must be refused before any password is checked;
    # otherwise the two answers tell a guesser which password is right.
    assert right.json() == wrong.json()
    _assert_token_error(wrong, 400, "unsupported_grant_type")
    written = recorded_in_turn(mark, (events.TOKEN_FAILED, "unsupported_grant_type"),
                               (events.TOKEN_FAILED, "unsupported_grant_type"))
    assert [event.detail for event in written][0] == written[1].detail  # the record tells no more than the answer
    assert password not in json.dumps([event.detail for event in written])


def test_token_request_without_grant_type_is_an_invalid_request(discovery, service):
    mark = audit_mark()
    response = requests.post(discovery["token_endpoint"], auth=(service.client.client_id, service.client_secret),
                             data={"scope": "orders:read"}, timeout=10)
    # RFC 6749 §5.2: a missing required parameter is invalid_request.
    _assert_token_error(response, 400, "invalid_request")
    recorded(mark, type=events.TOKEN_FAILED, reason="invalid_request", client_id=service.client.client_id)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GARBAGE = {
    "binary-body": dict(method="POST", data=bytes(range(256)) * 8, headers=FORM),
    "bad-percent-encoding": dict(method="POST", data=b"grant_type=client_credentials&client_id=%ZZ%", headers=FORM),
    "nul-in-client-id": dict(method="POST", data={"grant_type": "client_credentials", "client_id": "a\x00b",
                                                  "client_secret": "x"}),
    "nul-in-basic-auth": dict(method="POST", data={"grant_type": "client_credentials"}, auth=("a\x00b", "x\x00")),
    "huge-client-id": dict(method="POST", data={"grant_type": "client_credentials", "client_id": "a" * 200_000,
                                                "client_secret": "x"}),
    "huge-code": dict(method="POST", data={"grant_type": "authorization_code", "code": "c" * 200_000,
                                           "redirect_uri": REDIRECT_URI, "code_verifier": VERIFIER}),
    "body-over-upload-limit": dict(method="POST", data={"grant_type": "client_credentials", "scope": "s" * 3_000_000}),
    "json-body": dict(method="POST", json={"grant_type": "client_credentials", "client_id": "x",
                                           "client_secret": "y"}),
    "repeated-grant-type": dict(method="POST", data=[("grant_type", "client_credentials"),
                                                     ("grant_type", "authorization_code")]),
    "device-code-without-device-code": dict(method="POST", data={"grant_type": DEVICE_CODE_GRANT}),
    "get-instead-of-post": dict(method="GET", params={"grant_type": "client_credentials"}),
}


# Refused before any view runs, so there is no OAuth request to record: the method, and a body past the limit.
UNRECORDED_GARBAGE = {"get-instead-of-post", "body-over-upload-limit"}


@pytest.mark.parametrize("name", GARBAGE.keys())
def test_garbage_at_the_token_endpoint_never_causes_a_server_error(discovery, rp, name):
    kwargs = {"auth": (rp.client.client_id, rp.client_secret), **GARBAGE[name]}
    mark = audit_mark()
    response = requests.request(url=discovery["token_endpoint"], timeout=20, **kwargs)
    assert response.status_code in (400, 401, 405), (response.status_code, response.text[:200])
    assert AccessToken.objects.count() == 0
    written = list(Event.objects.filter(seq__gt=mark).exclude(outcome=events.ALERT))
    if name in UNRECORDED_GARBAGE:
        assert written == []
    else:
        # Recorded, and storable: a NUL byte or a huge value never makes the audit store refuse the event.
        [event] = written
        assert (event.type, event.detail["error"]) == (events.TOKEN_FAILED, response.json()["error"])
        assert len(event.client_id) <= 100 and "\x00" not in event.client_id


# --- 10. Implicit and hybrid flows. --------------------------------------------------------------------------------


@pytest.mark.parametrize("response_type, error", [
    ("token", "unsupported_response_type"), ("id_token", "unsupported_response_type"),
    ("id_token token", "unsupported_response_type"),
    # Hybrid types start with "code", which the IdP supports; the validator then refuses the combination.
    ("code id_token", "unauthorized_client"), ("code token", "unauthorized_client"),
])
def test_implicit_and_hybrid_response_types_are_refused(browser, discovery, rp, response_type, error):
    url = add_params_to_uri(discovery["authorization_endpoint"], {
        "response_type": response_type, "client_id": rp.client.client_id, "redirect_uri": REDIRECT_URI,
        "scope": "openid", "state": "st4te", "nonce": "n0nce",
        "code_challenge": create_s256_code_challenge(VERIFIER), "code_challenge_method": "S256",
    })
    before = _row_counts()
    response = browser.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    parts = urlsplit(location)
    params = parse_qs(parts.query)
    assert params["error"] == [error]
    assert params["state"] == ["st4te"]
    assert not parts.fragment
    assert {"code", "access_token", "id_token"}.isdisjoint(params)
    assert _row_counts() == before
