"""Audit of the OAuth endpoints: one event per token, userinfo or revocation response, with the precise reason.

oauthlib keeps its request object to itself, so the code that sees the HTTP request (idp/backend.py) and the code
that knows why a request is refused (idp/validator.py) meet here. The backend opens an `exchange` around each call
into oauthlib; the validator `bind`s its oauthlib request to it and notes on that request why it refused (`refuse`);
the backend, which sees the final status and body, then records exactly one event from both. The one JWT read here
is the payload of the access token just minted, to name its `jti` and audience: it is ours, so it is not verified.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from django.http import HttpRequest

from audit import events
from audit.services import event_record
from idp.oauth_request import carried

# Attribute names on objects we do not own: the oauthlib request, and the Django request (for the access-denied
# middleware, idp/access_audit.py, which skips a request whose refusal was already recorded).
REFUSAL_ATTRIBUTE = "idp_refusal"
RECORDED_ATTRIBUTE = "audit_recorded"

ENDPOINT_TOKEN = "token"
ENDPOINT_REVOCATION = "revocation"
ENDPOINT_INTROSPECTION = "introspection"
ENDPOINT_USERINFO = "userinfo"

REASON_REFRESH_REUSED = "refresh_reused"
REASON_INSUFFICIENT_SCOPE = "insufficient_scope"

# The RFC 6749 §5.2 `error` each precise reason is answered with; with any other error the response's own is
# recorded instead.
_ERRORS_OF_REASON = {
    "invalid_client": {"invalid_client"},
    "code_replay": {"invalid_grant"},
    "redirect_mismatch": {"invalid_grant"},
    # RFC 7636 §4.6: a wrong verifier is invalid_grant; oauthlib answers a missing one with invalid_request.
    "invalid_pkce": {"invalid_grant", "invalid_request"},
    "invalid_grant": {"invalid_grant"},
    REASON_REFRESH_REUSED: {"invalid_grant"},
}
_MAX_CLAIMED_ID = 100


@dataclass(frozen=True)
class Refusal:
    """Why the validator refused an oauthlib request: the event type and reason to record, and what it learnt."""

    type: str
    reason: str
    client_id: str = ""
    user: Any = None
    detail: dict[str, Any] = field(default_factory=dict)


class Exchange:
    """One call into oauthlib; `oauthlib_request` is the request the validator saw, once it has seen one."""

    __slots__ = ("oauthlib_request",)

    def __init__(self) -> None:
        self.oauthlib_request = None

    @property
    def refusal(self) -> Refusal | None:
        return refusal_of(self.oauthlib_request)


_current: ContextVar[Exchange | None] = ContextVar("idp_oauth_exchange", default=None)


@contextmanager
def exchange() -> Iterator[Exchange]:
    """Open an exchange for one call into oauthlib; the validator binds its request to it while it lasts."""
    current = Exchange()
    reset = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(reset)


def bind(oauthlib_request) -> None:
    """Tie the oauthlib request the validator is looking at to the open exchange, if there is one."""
    current = _current.get()
    if current is not None and current.oauthlib_request is None:
        current.oauthlib_request = oauthlib_request


def refuse(oauthlib_request, refusal: Refusal | None) -> None:
    """Note (or, with None, withdraw) why the validator refuses this request; the latest note stands."""
    setattr(oauthlib_request, REFUSAL_ATTRIBUTE, refusal)
    bind(oauthlib_request)


def refusal_of(oauthlib_request) -> Refusal | None:
    """The validator's note on an oauthlib request, or None."""
    return carried(oauthlib_request, REFUSAL_ATTRIBUTE)


def token_refusal(reason: str, **detail: Any) -> Refusal:
    """A refusal at the token endpoint with a precise reason (one of audit.events.TOKEN_FAILURE_REASONS)."""
    return Refusal(type=events.TOKEN_FAILED, reason=reason, detail=detail)


def mark_recorded(request: HttpRequest) -> None:
    """Tell the access-denied middleware that this request's refusal is already recorded."""
    setattr(request, RECORDED_ATTRIBUTE, True)


# --- Reading what a response says, without verifying anything. --------------------------------------------------


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT we minted or found stored by checksum, read without verification; {} if unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def _json_object(body: str | bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(body or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def clean(value: Any, limit: int = _MAX_CLAIMED_ID) -> str:
    """Whatever a caller sent, made fit for an event: a string, cut short, with any NUL (which PostgreSQL refuses
    in text and JSON) shown as U+FFFD."""
    return str(value or "")[:limit].replace("\x00", "\ufffd")


def claimed_client_id(request: HttpRequest) -> str:
    """The client_id a request claims (HTTP Basic first, then the body), before anything has checked it."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            # RFC 6749 §2.3.1: the client_id is form-encoded before it is put in the Basic credentials.
            return clean(unquote_plus(base64.b64decode(credentials).decode("utf-8").split(":", 1)[0]))
        except (binascii.Error, ValueError):
            return ""
    return clean(request.POST.get("client_id", ""))


def _client_id_of(oauthlib_request) -> str:
    client = getattr(oauthlib_request, "client", None) if oauthlib_request is not None else None
    return getattr(client, "client_id", "") or ""


# --- Recording. -----------------------------------------------------------------------------------------------------


def token_failure_record(
    *,
    request: HttpRequest,
    error: str,
    reason: str = "",
    client_id: str = "",
    endpoint: str = ENDPOINT_TOKEN,
    user=None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record one token.failed event: `error` is the RFC 6749 §5.2 code answered, `reason` the precise one."""
    event_record(
        type=events.TOKEN_FAILED,
        outcome=events.FAILURE,
        request=request,
        user=user,
        client_id=client_id or claimed_client_id(request),
        reason=reason or error,
        detail={"endpoint": endpoint, "error": clean(error, 64), **(detail or {})},
    )
    mark_recorded(request)


def _grant_type(request: HttpRequest, oauthlib_request) -> str:
    grant_type = getattr(oauthlib_request, "grant_type", None) if oauthlib_request is not None else None
    return clean(grant_type or request.POST.get("grant_type", ""))


def _token_issued_record(*, request: HttpRequest, oauthlib_request, body: str) -> None:
    claims = unverified_claims(str(_json_object(body).get("access_token", "")))
    detail: dict[str, Any] = {
        "grant_type": _grant_type(request, oauthlib_request),
        "jti": claims.get("jti") or carried(oauthlib_request, "idp_jti", ""),
        "scope": claims.get("scope", ""),
        "audience": claims.get("aud", ""),
    }
    refresh_token = carried(oauthlib_request, "idp_refresh_token", None)
    if refresh_token is not None and refresh_token.token_family:
        detail["token_family"] = str(refresh_token.token_family)
    exchanged = carried(oauthlib_request, "idp_exchange", None)  # idp/token_exchange.py (RFC 8693)
    if exchanged is not None:
        detail.update(subject_jti=exchanged["subject_jti"], subject_audience=exchanged["subject_audience"],
                      act=exchanged["act"])
    event_record(
        type=events.TOKEN_EXCHANGED if exchanged is not None else events.TOKEN_ISSUED,
        outcome=events.SUCCESS,
        request=request,
        user=getattr(oauthlib_request, "user", None),
        client_id=claims.get("client_id") or _client_id_of(oauthlib_request),
        detail=detail,
    )


def _matching(refusal: Refusal | None, error: str) -> Refusal | None:
    # A note whose reason cannot come with this `error` is stale: oauthlib refused later, for another reason.
    return refusal if refusal is not None and error in _ERRORS_OF_REASON.get(refusal.reason, ()) else None


def token_response_record(*, request: HttpRequest, exchange: Exchange, body: str, status: int) -> None:
    """Record the one event a token-endpoint response calls for: token.issued, token.refresh_reused or token.failed."""
    oauthlib_request = exchange.oauthlib_request
    if status == 200:
        _token_issued_record(request=request, oauthlib_request=oauthlib_request, body=body)
        return
    error = clean(_json_object(body).get("error") or "invalid_request", 64)
    refusal = _matching(exchange.refusal, error)
    client_id = (refusal.client_id if refusal else "") or _client_id_of(oauthlib_request)
    detail = {"grant_type": _grant_type(request, oauthlib_request), **(refusal.detail if refusal else {})}
    if refusal is not None and refusal.type == events.TOKEN_REFRESH_REUSED:
        # RFC 9700 §4.14.2: recorded under its own type, which the refresh-reuse detector reads; not token.failed.
        event_record(type=events.TOKEN_REFRESH_REUSED, outcome=events.FAILURE, request=request, user=refusal.user,
                     client_id=client_id or claimed_client_id(request), reason=refusal.reason,
                     detail={"endpoint": ENDPOINT_TOKEN, "error": error, **detail})
        mark_recorded(request)
        return
    token_failure_record(request=request, error=error, reason=refusal.reason if refusal else error,
                         client_id=client_id, user=refusal.user if refusal else None, detail=detail)


def revocation_response_record(*, request: HttpRequest, exchange: Exchange, body: str, status: int) -> None:
    """Record token.revoked for an RFC 7009 revocation that was honoured, token.failed for a refused request."""
    oauthlib_request = exchange.oauthlib_request
    if status == 200:
        hint = getattr(oauthlib_request, "token_type_hint", None) if oauthlib_request is not None else None
        event_record(type=events.TOKEN_REVOKED, outcome=events.SUCCESS, request=request,
                     client_id=_client_id_of(oauthlib_request),
                     detail={"endpoint": ENDPOINT_REVOCATION, "token_type_hint": clean(hint, 32)})
        return
    error = clean(_json_object(body).get("error") or "invalid_request", 64)
    refusal = _matching(exchange.refusal, error)
    token_failure_record(request=request, error=error, reason=refusal.reason if refusal else error,
                         client_id=(refusal.client_id if refusal else "") or _client_id_of(oauthlib_request),
                         endpoint=ENDPOINT_REVOCATION, detail=refusal.detail if refusal else None)


def bearer_rejection_record(*, request: HttpRequest, refusal: Refusal, endpoint: str) -> None:
    """Record one token.rejected event for a bearer token refused at `endpoint`; never the token itself."""
    event_record(
        type=events.TOKEN_REJECTED,
        outcome=events.FAILURE,
        request=request,
        user=refusal.user,
        client_id=refusal.client_id,
        reason=refusal.reason,
        detail={"endpoint": endpoint, "path": clean(request.path, 200), **refusal.detail},
    )
    mark_recorded(request)
