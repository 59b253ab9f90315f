"""Local validation of RFC 9068 JWT access tokens against the issuer's published keys."""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jwt.algorithms import get_default_algorithms

from idp_resource_server.errors import (
    REASON_BAD_SIGNATURE,
    REASON_EXPIRED,
    REASON_FORBIDDEN_HEADER,
    REASON_MALFORMED,
    REASON_MISSING_CLAIM,
    REASON_NOT_YET_VALID,
    REASON_UNKNOWN_KEY,
    REASON_WRONG_AUDIENCE,
    REASON_WRONG_ISSUER,
    REASON_WRONG_TYPE,
    InvalidToken,
)
from idp_resource_server.jwks import JwksCache

# RFC 9068 §2.1 / §4: the `typ` of a JWT access token; "application/at+jwt" is the same media type written out
# (RFC 7515 §4.1.9), and media types compare case-insensitively.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# RFC 9068 §2.2: claims every access token carries. (`nbf` is optional there; it is checked when present.)
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
# RFC 8725 §3.10 and RFC 7515 §4.1.2-§4.1.6: header parameters that name or carry a key. Trusting any of them lets the
# token pick its own verification key; we use only the issuer's JWKS, so a token carrying one is refused outright.
FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c"})
# Far above any token the IdP signs (about 1 KB): longer input is refused before it is parsed.
MAX_TOKEN_LENGTH = 8192
DEFAULT_LEEWAY = 30


class Claims(Mapping[str, Any]):
    """The verified claims of an access token: a read-only mapping with helpers for what services ask most."""

    __slots__ = ("_claims",)

    def __init__(self, claims: Mapping[str, Any]) -> None:
        self._claims = dict(claims)

    def __getitem__(self, name: str) -> Any:
        return self._claims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims)

    def __len__(self) -> int:
        return len(self._claims)

    def __repr__(self) -> str:
        return f"Claims(sub={self.subject!r}, client_id={self.client_id!r}, jti={self.get('jti')!r})"

    @property
    def subject(self) -> str:
        return self._claims["sub"]

    @property
    def client_id(self) -> str:
        return self._claims["client_id"]

    @property
    def scopes(self) -> frozenset[str]:
        """RFC 9068 §2.2.3: `scope` is a space-separated string."""
        return frozenset(str(self._claims.get("scope") or "").split())

    @property
    def roles(self) -> frozenset[str]:
        """RFC 9068 §2.2.3.1: `roles` is an array of strings."""
        return frozenset(self._claims.get("roles") or ())

    @property
    def actor(self) -> str | None:
        """RFC 8693 §4.1: the `sub` of the party acting on the subject's behalf, for an exchanged token."""
        act = self._claims.get("act")
        return act.get("sub") if isinstance(act, dict) else None


# PyJWT's own signature algorithms (each a thin layer over `cryptography`), used without PyJWT's decode around them:
# that spends more time checking the base64 alphabet character by character in Python than the RSA verification
# takes. The compact form is parsed here instead, as strictly (_b64url), and the claims are checked as PyJWT does.
_VERIFIERS = get_default_algorithms()
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def _b64url(segment: str) -> bytes:
    """A base64url segment of a compact JWS (RFC 7515 §2: no padding, no character outside the alphabet), decoded
    in C; raises InvalidToken (a ValueError) for anything else."""
    try:
        data = segment.encode("ascii")
        if b"+" in data or b"/" in data or b"=" in data:
            raise ValueError("not base64url")
        return binascii.a2b_base64(data.translate(_URLSAFE_TO_STANDARD) + b"=" * (-len(data) % 4), strict_mode=True)
    except (ValueError, binascii.Error):
        raise InvalidToken(REASON_MALFORMED, "The access token is malformed.") from None


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim (RFC 7519 §2), None when absent; InvalidToken when it is not a number."""
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(REASON_MALFORMED, f"The access token's {name} is not a number.")
    return value


def _check_claim_types(claims: Mapping[str, Any]) -> None:
    # The RFC 9068 members _check_registered_claims does not know.
    if not isinstance(claims.get("client_id"), str) or not claims["client_id"]:
        raise InvalidToken(REASON_MALFORMED, "The access token's client_id is not a string.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidToken(REASON_MALFORMED, "The access token's sub is not a string.")
    if "scope" in claims and not isinstance(claims["scope"], str):
        raise InvalidToken(REASON_MALFORMED, "The access token's scope is not a string.")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken(REASON_MALFORMED, "The access token's roles are not a list of strings.")


class TokenValidator:
    """Validates access tokens of one issuer for one service (its audience or audiences).

    `validate` checks, in this order: compact JWS syntax; no key-carrying header (jku, jwk, x5u, x5c) and no
    `crit`; `typ` at+jwt; a `kid` the issuer publishes; the header's `alg` equal to that key's own algorithm; the
    signature; `iss`, `aud`, `exp`, `nbf` and `iat` with `leeway` seconds of clock skew; and the RFC 9068 §2.2
    required claims. The keys come from `jwks_cache`, by default one fed by the issuer's discovery document.
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Iterable[str],
        *,
        leeway: float = DEFAULT_LEEWAY,
        jwks_cache: JwksCache | None = None,
    ) -> None:
        audiences = [audience] if isinstance(audience, str) else list(audience)
        if not issuer or not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("A TokenValidator needs the issuer and at least one audience.")
        if not 0 <= leeway <= 300:
            raise ValueError("The leeway is a small clock skew in seconds (0 to 300).")
        self.issuer = issuer
        self.audiences = tuple(audiences)
        self.leeway = leeway
        self.jwks_cache = jwks_cache if jwks_cache is not None else JwksCache(issuer)

    def validate(self, token: str) -> Claims:
        """The token's verified claims; raises InvalidToken (with its reason) or KeysUnavailable."""
        header = self._header(token)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken(REASON_UNKNOWN_KEY, "The access token names no signing key.")
        key = self.jwks_cache.key(kid)
        if header.get("alg") != key.algorithm:
            # alg none, HS256 keyed with the public key, or any other algorithm than the key's own (RFC 8725 §3.1).
            raise InvalidToken(REASON_BAD_SIGNATURE, "The access token is not signed by this issuer.")
        signing_input, _, signature = token.rpartition(".")
        try:
            verified = _VERIFIERS[key.algorithm].verify(signing_input.encode("ascii"), key.key, _b64url(signature))
        except (InvalidToken, UnicodeEncodeError):
            verified = False
        if not verified:
            raise InvalidToken(REASON_BAD_SIGNATURE, "The access token is not signed by this issuer.")
        # Only now, under a good signature, is the payload read.
        try:
            claims = json.loads(_b64url(signing_input[signing_input.index(".") + 1:]))
        except ValueError:
            raise InvalidToken(REASON_MALFORMED, "The access token is malformed.") from None
        if not isinstance(claims, dict):
            raise InvalidToken(REASON_MALFORMED, "The access token is malformed.")
        self._check_registered_claims(claims)
        _check_claim_types(claims)
        return Claims(claims)

    def _check_registered_claims(self, claims: dict[str, Any]) -> None:
        """RFC 7519 §4.1 and RFC 9068 §2.2 with PyJWT's rules, in its order: presence, iat, nbf, exp, iss, aud, jti."""
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                raise InvalidToken(REASON_MISSING_CLAIM, f"The access token has no {name} claim.")
        now = time.time()
        issued_at, not_before, expires = (_numeric_date(claims, name) for name in ("iat", "nbf", "exp"))
        if issued_at > now + self.leeway or (not_before is not None and not_before > now + self.leeway):
            raise InvalidToken(REASON_NOT_YET_VALID, "The access token is not valid yet.")
        if expires <= now - self.leeway:
            raise InvalidToken(REASON_EXPIRED, "The access token has expired.")
        if claims["iss"] != self.issuer:
            raise InvalidToken(REASON_WRONG_ISSUER, "The access token was issued by someone else.")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not all(isinstance(audience, str) for audience in audiences):
            raise InvalidToken(REASON_MALFORMED, "The access token's aud is not a string or a list of strings.")
        if not any(audience in self.audiences for audience in audiences):
            raise InvalidToken(REASON_WRONG_AUDIENCE, "The access token is meant for another audience.")
        if not isinstance(claims["jti"], str):
            raise InvalidToken(REASON_MALFORMED, "The access token's jti is not a string.")

    def _header(self, token: str) -> dict:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            # Exactly three parts: a JWS in compact form. Five would be an encrypted JWT, which we do not accept.
            raise InvalidToken(REASON_MALFORMED, "The access token is malformed.")
        # Only the header is decoded here; the payload is not looked at before the signature is verified.
        try:
            header = json.loads(_b64url(token[: token.index(".")]))
        except ValueError:
            raise InvalidToken(REASON_MALFORMED, "The access token is malformed.") from None
        if not isinstance(header, dict):
            raise InvalidToken(REASON_MALFORMED, "The access token is malformed.")
        if FORBIDDEN_HEADERS.intersection(header):
            raise InvalidToken(REASON_FORBIDDEN_HEADER, "The access token carries a key in its header.")
        if "crit" in header:
            # RFC 7515 §4.1.11: extensions we do not understand must be refused, and we understand none.
            raise InvalidToken(REASON_MALFORMED, "The access token uses critical header extensions.")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            # RFC 9068 §4: refuse anything but an access token (an ID token, `typ: JWT`, above all).
            raise InvalidToken(REASON_WRONG_TYPE, "The token is not an access token.")
        return header

