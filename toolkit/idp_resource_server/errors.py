"""Why a token was refused: a small exception hierarchy carrying the RFC 6750 §3.1 error code and a reason."""

from __future__ import annotations

# RFC 6750 §3.1 error codes.
INVALID_TOKEN = "invalid_token"
INSUFFICIENT_SCOPE = "insufficient_scope"

# Reasons: stable, machine-readable, safe to log and to count. Never the token itself.
REASON_MISSING = "missing"
REASON_MALFORMED = "malformed"
REASON_BAD_SIGNATURE = "bad_signature"
REASON_UNKNOWN_KEY = "unknown_key"
REASON_FORBIDDEN_HEADER = "forbidden_header"
REASON_WRONG_TYPE = "wrong_type"
REASON_EXPIRED = "expired"
REASON_NOT_YET_VALID = "not_yet_valid"
REASON_WRONG_ISSUER = "wrong_issuer"
REASON_WRONG_AUDIENCE = "wrong_audience"
REASON_MISSING_CLAIM = "missing_claim"
REASON_KEYS_UNAVAILABLE = "keys_unavailable"


class TokenError(Exception):
    """A refused request. `error` is the RFC 6750 code (None when no code applies), `status` the HTTP status.

    `description` is safe to send to the caller: it never contains the token or any of its claims.
    """

    error: str | None = INVALID_TOKEN
    status: int = 401

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, description={self.description!r})"


class TokenMissing(TokenError):
    """No access token at all. RFC 6750 §3.1: the challenge then carries no error code."""

    error = None

    def __init__(self, description: str = "An access token is required.") -> None:
        super().__init__(REASON_MISSING, description)


class InvalidToken(TokenError):
    """RFC 6750 §3.1 invalid_token: expired, revoked, malformed, or invalid for another reason."""


class InsufficientScope(TokenError):
    """RFC 6750 §3.1 insufficient_scope: a valid token without the scope or role this request needs."""

    error = INSUFFICIENT_SCOPE
    status = 403


class KeysUnavailable(TokenError):
    """The issuer's keys could not be fetched and none are cached: the token cannot be judged, so it is refused.

    Answered as 503, not 401: the caller's token may be perfectly good, and a 401 would make it throw the token away.
    """

    error = None
    status = 503

    def __init__(self, description: str = "The issuer's signing keys are unavailable; try again shortly.") -> None:
        super().__init__(REASON_KEYS_UNAVAILABLE, description)
