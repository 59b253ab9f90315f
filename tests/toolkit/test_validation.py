"""TokenValidator: a genuine token passes; every forgery and misuse is refused with the reason that names it."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from idp_resource_server import Claims, InvalidToken, JwksCache, TokenValidator
from idp_resource_server.errors import INVALID_TOKEN

from tests.toolkit.conftest import AUDIENCE, access_claims, ec_key, rsa_key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


@pytest.fixture
def validator(issuer):
    return TokenValidator(issuer.issuer, AUDIENCE)


def _refused(validator, token) -> InvalidToken:
    with pytest.raises(InvalidToken) as refused:
        validator.validate(token)
    assert refused.value.error == INVALID_TOKEN
    assert refused.value.status == 401
    return refused.value


# --- Attack tokens: the same set the IdP's own endpoints are tested with (tests/flows/test_attacks.py). --------------


def _alg_none(issuer, issuer_key, attacker):
    return _compact({"alg": "none", "typ": "at+jwt", "kid": issuer_key.kid}, access_claims(issuer.issuer)) + "."


def _hs256_keyed_with_public_pem(issuer, issuer_key, attacker):
    secret = issuer_key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = _compact({"alg": "HS256", "typ": "at+jwt", "kid": issuer_key.kid}, access_claims(issuer.issuer))
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _hs256_keyed_with_public_jwk(issuer, issuer_key, attacker):
    secret = json.dumps(issuer_key.jwk).encode()
    signing_input = _compact({"alg": "HS256", "typ": "at+jwt", "kid": issuer_key.kid}, access_claims(issuer.issuer))
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _forged_with_the_issuers_kid(issuer, issuer_key, attacker):
    return jwt.encode(access_claims(issuer.issuer), attacker.private_key, algorithm="RS256",
                      headers={"typ": "at+jwt", "kid": issuer_key.kid})


def _unknown_kid(issuer, issuer_key, attacker):
    return jwt.encode(access_claims(issuer.issuer), attacker.private_key, algorithm="RS256",
                      headers={"typ": "at+jwt", "kid": "attacker-key-1"})


def _with_header(**extra):
    def forge(issuer, issuer_key, attacker):
        headers = {"typ": "at+jwt", "kid": issuer_key.kid, **extra}
        if extra.get("jwk") == "attacker":
            headers["jwk"] = attacker.jwk
        return jwt.encode(access_claims(issuer.issuer), attacker.private_key, algorithm="RS256", headers=headers)

    return forge


def _real_key(headers=None, **changes):
    def mint(issuer, issuer_key, attacker):
        header = {"typ": "at+jwt", "kid": issuer_key.kid, **(headers or {})}
        header = {name: value for name, value in header.items() if value is not None}
        return jwt.encode(access_claims(issuer.issuer, **changes), issuer_key.private_key, algorithm="RS256",
                          headers=header)

    return mint


def _id_token(issuer, issuer_key, attacker):
    # What the IdP's ID tokens look like: typ JWT, aud the client, a nonce; same key, same issuer.
    claims = access_claims(issuer.issuer, aud=AUDIENCE, nonce="n-0S6_WzA2Mj", scope=None)
    return jwt.encode(claims, issuer_key.private_key, algorithm="RS256", headers={"typ": "JWT", "kid": issuer_key.kid})


ATTACKS = {
    "alg-none": (_alg_none, "bad_signature"),
    "hs256-keyed-with-public-pem": (_hs256_keyed_with_public_pem, "bad_signature"),
    "hs256-keyed-with-public-jwk": (_hs256_keyed_with_public_jwk, "bad_signature"),
    "forged-with-the-issuers-kid": (_forged_with_the_issuers_kid, "bad_signature"),
    "unknown-kid": (_unknown_kid, "unknown_key"),
    "jku-to-attacker-jwks": (_with_header(jku="https://evil.example.com/jwks.json"), "forbidden_header"),
    "x5u-to-attacker-cert": (_with_header(x5u="https://evil.example.com/cert.pem"), "forbidden_header"),
    "x5c-attacker-chain": (_with_header(x5c=["MIIBIjANBgkqhkiG9w0BAQEFAAOC"]), "forbidden_header"),
    "embedded-attacker-jwk": (_with_header(jwk="attacker"), "forbidden_header"),
    "id-token-as-access-token": (_id_token, "wrong_type"),
    "plain-jwt-typ": (_real_key(headers={"typ": "JWT"}), "wrong_type"),
    "no-typ": (_real_key(headers={"typ": ""}), "wrong_type"),
    "expired": (_real_key(exp=int(time.time()) - 120, iat=int(time.time()) - 400, nbf=int(time.time()) - 400),
                "expired"),
    "not-yet-valid": (_real_key(nbf=int(time.time()) + 600), "not_yet_valid"),
    "issued-in-the-future": (_real_key(iat=int(time.time()) + 600), "not_yet_valid"),
    "wrong-audience": (_real_key(aud="https://evil.example.com"), "wrong_audience"),
    "wrong-issuer": (_real_key(iss="https://evil.example.com"), "wrong_issuer"),
    "critical-extension": (_real_key(headers={"crit": ["exp"], "exp": 1}), "malformed"),
}


@pytest.mark.parametrize("forge, reason", ATTACKS.values(), ids=ATTACKS.keys())
def test_attack_token_is_refused_with_the_reason_that_names_it(issuer, issuer_key, validator, forge, reason):
    attacker = rsa_key("attacker-key-1")
    genuine = jwt.encode(access_claims(issuer.issuer), issuer_key.private_key, algorithm="RS256",
                         headers={"typ": "at+jwt", "kid": issuer_key.kid})
    token = forge(issuer, issuer_key, attacker)

    assert _refused(validator, token).reason == reason
    # The refusal changed nothing: the genuine token still passes.
    assert validator.validate(genuine)["sub"]


# --- The genuine article. --------------------------------------------------------------------------------------------


def test_genuine_access_token_yields_its_claims(validator, mint):
    claims = validator.validate(mint(scope="orders:read inventory:read", roles=["admin", "clerk"],
                                     act={"sub": "orders-service"}))
    assert isinstance(claims, Claims)
    assert claims.subject == "5b0a3f8e-0000-4000-8000-00000000a11c"
    assert claims.client_id == "orders-web"
    assert claims.scopes == {"orders:read", "inventory:read"}
    assert claims.roles == {"admin", "clerk"}
    assert claims.actor == "orders-service"
    assert claims["aud"] == AUDIENCE
    assert "orders-web" in repr(claims) and "eyJ" not in repr(claims)


def test_typ_is_compared_case_insensitively_and_may_be_written_as_a_full_media_type(validator, mint):
    assert validator.validate(mint(headers={"typ": "AT+JWT"}))
    assert validator.validate(mint(headers={"typ": "application/at+jwt"}))


def test_audience_array_naming_this_service_is_accepted(validator, mint):
    assert validator.validate(mint(aud=["https://other.example.com", AUDIENCE]))


def test_a_service_with_several_audiences_accepts_each(issuer, mint):
    validator = TokenValidator(issuer.issuer, ["https://legacy.example.com", AUDIENCE])
    assert validator.validate(mint())
    assert validator.validate(mint(aud="https://legacy.example.com"))


def test_es256_key_from_the_jwks_verifies_es256_tokens(issuer, issuer_key, validator, mint):
    key = ec_key()
    issuer.publish(issuer_key, key)
    assert validator.validate(mint(key=key))


def test_expired_token_is_accepted_within_the_leeway_and_refused_beyond_it(issuer, mint):
    now = int(time.time())
    token = mint(exp=now - 10, iat=now - 300, nbf=now - 300)
    assert TokenValidator(issuer.issuer, AUDIENCE, leeway=30).validate(token)
    assert _refused(TokenValidator(issuer.issuer, AUDIENCE, leeway=5), token).reason == "expired"


@pytest.mark.parametrize("claim", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
def test_token_without_an_rfc_9068_required_claim_is_refused(validator, mint, claim):
    assert _refused(validator, mint(**{claim: None})).reason == "missing_claim"


@pytest.mark.parametrize("changes", [
    {"sub": 42}, {"sub": ""}, {"client_id": ["a"]}, {"jti": 7}, {"scope": ["orders:read"]}, {"roles": "admin"},
    {"roles": [1, 2]}, {"exp": "tomorrow"},
], ids=["sub-number", "sub-empty", "client-id-list", "jti-number", "scope-list", "roles-string", "roles-numbers",
        "exp-string"])
def test_claims_of_the_wrong_type_are_refused_as_malformed(validator, mint, changes):
    assert _refused(validator, mint(**changes)).reason == "malformed"


@pytest.mark.parametrize("token", [
    "", "not-a-jwt", "a.b", "a.b.c.d.e", "eyJhbGciOiJSUzI1NiJ9.e30.", "x" * 9000, "....",
    "eyJ0eXAiOiJhdCtqd3QifQ.bm90IGpzb24.c2ln", "bm90IGpzb24.e30.c2ln",
], ids=["empty", "no-dots", "two-parts", "jwe-shape", "no-typ-no-kid", "oversized", "only-dots", "typ-but-no-kid",
        "header-not-json"])
def test_garbage_is_refused_as_malformed_without_fetching_keys(issuer, validator, token):
    refusal = _refused(validator, token)
    assert refusal.reason in {"malformed", "wrong_type", "unknown_key"}
    assert issuer.fetch_count() == 0


def test_token_with_a_garbage_payload_under_a_real_kid_is_refused_by_its_signature(validator, issuer_key):
    header = _b64(json.dumps({"typ": "at+jwt", "kid": issuer_key.kid, "alg": "RS256"}).encode())
    assert _refused(validator, f"{header}.{_b64(b'not json')}.{_b64(b'sig')}").reason == "bad_signature"


def test_token_without_kid_is_refused_as_signed_by_an_unknown_key(validator, mint):
    assert _refused(validator, mint(headers={"kid": None})).reason == "unknown_key"


def test_a_validator_refuses_to_be_built_without_an_audience(issuer):
    with pytest.raises(ValueError):
        TokenValidator(issuer.issuer, [])
    with pytest.raises(ValueError):
        TokenValidator(issuer.issuer, AUDIENCE, leeway=3600)


def test_validator_shares_the_cache_it_is_given(issuer, mint):
    cache = JwksCache(issuer.issuer)
    first = TokenValidator(issuer.issuer, AUDIENCE, jwks_cache=cache)
    second = TokenValidator(issuer.issuer, "https://inventory.example.com", jwks_cache=cache)
    assert first.validate(mint())
    assert second.validate(mint(aud="https://inventory.example.com"))
    assert issuer.fetch_count() == 1


@pytest.mark.parametrize("tamper", [
    lambda token: token + "=",  # padding: base64url in a JWS has none (RFC 7515 §2)
    lambda token: token + "!!!!",  # characters outside the alphabet, which a lax decoder skips (GHSA-hxm8-2xgr-2p9m)
    lambda token: token[:-4] + "+/+/",  # the standard alphabet instead of the URL-safe one
    lambda token: token[:-1] + " " + token[-1],  # whitespace inside the signature
    lambda token: token.replace(".", ".é", 1),  # a character that is not ASCII in the payload
    lambda token: token[: token.index(".") + 1] + "e30." + token.rsplit(".", 1)[1],  # another payload, same signature
], ids=["padding", "junk-characters", "standard-alphabet", "whitespace", "non-ascii", "payload-swapped"])
def test_a_genuine_token_tampered_with_in_its_encoding_is_refused(validator, mint, tamper):
    token = mint()
    assert validator.validate(token)
    assert _refused(validator, tamper(token)).reason in {"bad_signature", "malformed"}
