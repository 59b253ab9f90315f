"""Why a bearer token is refused at userinfo or introspection: one reason from audit.events.TOKEN_REJECTED_REASONS.

The hot path never comes here: a live token is found by its SHA-256 checksum and needs no signature check. Only a
token that matches no live row is verified, once, to say what is wrong with it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.conf import settings

from clients.models import Client
from idp.constants import ACCESS_TOKEN_TYP
from idp.keys import signing_key_by_kid

BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
WRONG_ISSUER = "wrong_issuer"
WRONG_AUDIENCE = "wrong_audience"
WRONG_TYPE = "wrong_type"
REVOKED = "revoked"
MALFORMED = "malformed"

# RFC 9068 §2.1: the claims every access token of ours carries.
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]
# RFC 9068 §4: "application/at+jwt" is the same media type written out (RFC 7515 §4.1.9).
ACCESS_TOKEN_TYPES = frozenset({ACCESS_TOKEN_TYP, f"application/{ACCESS_TOKEN_TYP}"})


@dataclass(frozen=True)
class Rejection:
    """A refused bearer token: the reason, and (only when our signature vouches for them) whose it was."""

    reason: str
    client_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class TokenInvalid(Exception):
    """The token is not a valid access token of ours; `reason` says why. `claims` are set only once our signature
    vouches for them (a wrong `typ`), so that nothing a forger wrote is ever repeated."""

    def __init__(self, reason: str, claims: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claims = claims or {}


MAX_TOKEN_LENGTH = 8192


def access_token_claims(token: str, *, audience: str | None = None, verify_expiry: bool = True) -> dict[str, Any]:
    """The claims of an access token signed by one of our published keys; raises TokenInvalid otherwise.

    The one verification of our own JWTs (userinfo and introspection diagnostics, the cookie API, token exchange).
    Checks, in this order: the signature, with the algorithm of the key its `kid` names and never the one the header
    asks for (RFC 8725 §3.1); `exp` and `nbf` with IDP_CLOCK_LEEWAY of skew (skipped with `verify_expiry=False`,
    which only a caller looking for something to revoke may use); `iss`; `aud` when `audience` is given; the
    RFC 9068 claims; and `typ` (RFC 9068 §4), which tells an ID token from an access token.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid(MALFORMED)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenInvalid(MALFORMED) from None
    kid = header.get("kid")
    key = signing_key_by_kid(kid) if isinstance(kid, str) else None
    if key is None or header.get("alg") != key.algorithm:
        # An unknown key, `alg: none`, or HS256 keyed with our public key: none of them carries our signature.
        raise TokenInvalid(BAD_SIGNATURE)
    try:
        claims = jwt.decode(
            token, key.public_key, algorithms=[key.algorithm], issuer=settings.IDP_ISSUER, audience=audience,
            leeway=settings.IDP_CLOCK_LEEWAY,
            options={"verify_aud": audience is not None, "require": ["exp", "iat", "iss"],
                     "verify_exp": verify_expiry, "verify_nbf": verify_expiry, "verify_iat": verify_expiry},
        )
    except jwt.InvalidSignatureError:
        raise TokenInvalid(BAD_SIGNATURE) from None
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
        raise TokenInvalid(EXPIRED) from None
    except jwt.InvalidIssuerError:
        raise TokenInvalid(WRONG_ISSUER) from None
    except jwt.InvalidAudienceError:
        raise TokenInvalid(WRONG_AUDIENCE) from None
    except jwt.InvalidTokenError:
        raise TokenInvalid(MALFORMED) from None
    if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
        raise TokenInvalid(WRONG_TYPE, claims)
    if any(name not in claims for name in REQUIRED_CLAIMS):
        raise TokenInvalid(MALFORMED)
    return claims


def stored_token_claims(token: str) -> dict[str, Any]:
    """The claims of an access token found by its SHA-256 checksum in a live row: the row proves we signed exactly
    these bytes, so they are parsed without checking the signature again (and a row is never written for a token
    that is not well formed)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _issuable_audiences(client_id: str) -> set[str] | None:
    """Every `aud` idp.tokens.resolve_audience can give this client's tokens; None when the client is gone."""
    row = Client.objects.filter(client_id=client_id).values_list("audiences", "default_audience").first()
    if row is None:
        return None
    audiences, default = row
    return {*audiences, default or client_id}


def unknown_token_rejection(token: str) -> Rejection:
    """Why a token that matches no live access-token row is refused. One signature check, one query at most.

    A token we signed for an audience its client cannot be given is wrong_audience; one that is ours in every
    respect was revoked (or its client or user removed): its row is gone.
    """
    try:
        claims = access_token_claims(token)
    except TokenInvalid as invalid:
        return Rejection(reason=invalid.reason)
    client_id = str(claims["client_id"])
    detail = {"jti": str(claims["jti"])[:64]}
    issuable = _issuable_audiences(client_id)
    if issuable is not None and not (isinstance(claims["aud"], str) and claims["aud"] in issuable):
        return Rejection(reason=WRONG_AUDIENCE, client_id=client_id, detail=detail)
    return Rejection(reason=REVOKED, client_id=client_id, detail=detail)
