"""Framework-neutral pieces: read a Bearer header (RFC 6750 §2.1), validate it, write the challenge (RFC 6750 §3)."""

from __future__ import annotations

import re
import threading

from idp_resource_server.errors import (
    INSUFFICIENT_SCOPE,
    REASON_MALFORMED,
    InsufficientScope,
    InvalidToken,
    TokenError,
    TokenMissing,
)
from idp_resource_server.settings import ResourceServerSettings
from idp_resource_server.validator import Claims, TokenValidator

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme name is case-insensitive (RFC 9110 §11.1).
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)
# RFC 6750 §3: error_description and scope use %x20-21 / %x23-5B / %x5D-7E only (no quote, no backslash).
_UNSAFE_IN_CHALLENGE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')

_default_lock = threading.Lock()
_default_validator: TokenValidator | None = None


def bearer_token(authorization: str | None) -> str:
    """The token in an `Authorization: Bearer` header value.

    Raises TokenMissing when there is no header or it uses another scheme (RFC 6750 §3.1: no error code then), and
    InvalidToken(malformed) when it says Bearer but is not RFC 6750 §2.1 syntax.
    """
    if not authorization or authorization.split(" ", 1)[0].lower() != "bearer":
        raise TokenMissing()
    match = _BEARER.match(authorization)
    if match is None:
        raise InvalidToken(REASON_MALFORMED, "The Authorization header is not a Bearer token.")
    return match.group(1)


def _quoted(value: str) -> str:
    return '"' + _UNSAFE_IN_CHALLENGE.sub("", value) + '"'


def www_authenticate(error: TokenError | None, *, realm: str) -> str:
    """The `WWW-Authenticate` value for a 401 or 403 (RFC 6750 §3): the realm, and the error code when there is one."""
    parts = [f"realm={_quoted(realm)}"]
    if error is not None and error.error:
        parts.append(f"error={_quoted(error.error)}")
        parts.append(f"error_description={_quoted(error.description)}")
    return "Bearer " + ", ".join(parts)


def configure(settings: ResourceServerSettings | TokenValidator) -> TokenValidator:
    """Install the process-wide validator `validate_bearer` uses when it is given none; returns it."""
    global _default_validator
    validator = settings if isinstance(settings, TokenValidator) else settings.validator()
    with _default_lock:
        _default_validator = validator
    return validator


def validate_bearer(authorization: str | None, *, validator: TokenValidator | None = None) -> Claims:
    """The verified claims of the Bearer token in an Authorization header value, for any framework.

    Uses `validator`, or the one installed with `configure`. Raises a TokenError subclass whose `status`, `error`
    and `description` make the response (see `www_authenticate`).
    """
    validator = validator or _default_validator
    if validator is None:
        raise RuntimeError("Call idp_resource_server.configure(...) first, or pass a validator.")
    return validator.validate(bearer_token(authorization))


def require(claims: Claims, *, roles: tuple[str, ...] = (), scopes: tuple[str, ...] = ()) -> None:
    """Return quietly when the claims carry every named role and scope; raise InsufficientScope (403) otherwise."""
    missing_roles, missing_scopes = set(roles) - claims.roles, set(scopes) - claims.scopes
    if missing_roles or missing_scopes:
        needed = [*(f"role {name}" for name in sorted(missing_roles)),
                  *(f"scope {name}" for name in sorted(missing_scopes))]
        raise InsufficientScope(INSUFFICIENT_SCOPE, f"This request needs the {', '.join(needed)}.")
