"""DRF authentication for the IdP's own APIs: our RFC 9068 access tokens, from the access cookie or a bearer header.

A token is accepted only when it is one of ours and meant for this API (RFC 9068 §4): signed by a published key with
that key's own algorithm, `typ` at+jwt, `iss` the issuer, `aud` naming IDP_API_AUDIENCE, inside its validity window
(IDP_CLOCK_LEEWAY of skew), and not revoked (its stored row, found by SHA-256 checksum, still exists). Every refusal
is recorded once as token.rejected with one of the reasons in audit.events.TOKEN_REJECTED_REASONS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from oauth2_provider.models import get_access_token_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, CSRFCheck
from rest_framework.permissions import SAFE_METHODS

from audit import events
from audit.services import event_record
from idp import bearer
from idp.tokens import token_checksum

AccessToken = get_access_token_model()

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token.
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)

ENDPOINT = "api"  # the `endpoint` of token.rejected events, beside idp.token_audit's token and userinfo
SOURCE_HEADER = "header"
SOURCE_COOKIE = "cookie"

REASON_WRONG_TYPE = bearer.WRONG_TYPE
REASON_REVOKED = bearer.REVOKED
REASON_MALFORMED = bearer.MALFORMED


class AccessTokenRejected(Exception):
    """The presented token is not acceptable; `reason` is the audit reason, `description` safe to show.

    `claims` are set only once our signature vouches for them, so that an event never repeats what a forger wrote.
    """

    def __init__(self, reason: str, description: str, claims: dict | None = None) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description
        self.claims = claims or {}


@dataclass(frozen=True)
class VerifiedAccessToken:
    """An access token that passed every check, with its stored row (user and client loaded)."""

    claims: dict
    row: AccessToken

    @property
    def user(self):
        return self.row.user

    @property
    def scopes(self) -> list[str]:
        return str(self.claims.get("scope", "")).split()


_DESCRIPTIONS = {
    bearer.MALFORMED: "The access token is malformed.",
    bearer.BAD_SIGNATURE: "The access token is not signed by this issuer.",
    bearer.EXPIRED: "The access token has expired or is not valid yet.",
    bearer.WRONG_ISSUER: "The access token was issued by someone else.",
    bearer.WRONG_AUDIENCE: "The access token is meant for another audience.",
    bearer.WRONG_TYPE: "The token is not an access token.",
}


def access_token_claims_verify(*, token: str, audience: str, verify_expiry: bool = True) -> dict:
    """The claims of an access token of ours for `audience` (idp/bearer.py verifies); raises AccessTokenRejected.

    `verify_expiry=False` is used only to find what to revoke, which is never dangerous. The row lookup that detects
    revocation is `access_token_verify`'s.
    """
    try:
        return bearer.access_token_claims(token, audience=audience, verify_expiry=verify_expiry)
    except bearer.TokenInvalid as invalid:
        raise AccessTokenRejected(invalid.reason, _DESCRIPTIONS[invalid.reason], invalid.claims) from None


def access_token_verify(*, token: str, audience: str | None = None) -> VerifiedAccessToken:
    """A fully verified access token for `audience` (IDP_API_AUDIENCE by default); raises AccessTokenRejected.

    After the local checks, one query finds the stored row by checksum: revocation, a refresh-token family revoked
    for reuse, a disabled client and a deactivated user all make the token unacceptable at once.
    """
    claims = access_token_claims_verify(token=token, audience=audience or settings.IDP_API_AUDIENCE)
    row = (
        AccessToken.objects.select_related("user", "application")
        .filter(token_checksum=token_checksum(token))
        .first()
    )
    if row is None or (row.application is not None and not row.application.enabled):
        raise AccessTokenRejected(REASON_REVOKED, "The access token has been revoked.", claims)
    if row.user is None:
        # A client-credentials token names no person; this API answers about people only.
        raise AccessTokenRejected(REASON_WRONG_TYPE, "This API accepts only tokens issued to a person.", claims)
    if not row.user.is_active:
        raise AccessTokenRejected(REASON_REVOKED, "The access token has been revoked.", claims)
    return VerifiedAccessToken(claims=claims, row=row)


def presented_access_token(request: HttpRequest) -> tuple[str | None, str | None]:
    """The access token a request carries and where: an `Authorization: Bearer` header first, else the cookie.

    Raises AccessTokenRejected for a Bearer header that is not RFC 6750 §2.1 syntax. Another scheme in the
    Authorization header is not ours to judge and is ignored.
    """
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization.split(" ", 1)[0].lower() == "bearer":
        match = _BEARER.match(authorization)
        if match is None:
            raise AccessTokenRejected(REASON_MALFORMED, "The Authorization header is malformed.")
        return match.group(1), SOURCE_HEADER
    cookie = request.COOKIES.get(settings.IDP_ACCESS_COOKIE_NAME)
    if cookie:
        return cookie, SOURCE_COOKIE
    return None, None


def _django_request(request) -> HttpRequest:
    # DRF's Request resolves `.user` by authenticating again, so the audit service gets the wrapped HttpRequest.
    return getattr(request, "_request", request)


def token_rejection_record(*, request, rejection: AccessTokenRejected, source: str | None) -> None:
    """Record one token.rejected event for a refused token; never the token itself (its `jti` when ours)."""
    detail = {"endpoint": ENDPOINT, "path": request.path[:200], "source": source or SOURCE_HEADER}
    if rejection.claims.get("jti"):
        detail["jti"] = str(rejection.claims["jti"])[:64]
    event_record(
        type=events.TOKEN_REJECTED,
        outcome=events.FAILURE,
        request=_django_request(request),
        client_id=str(rejection.claims.get("client_id", ""))[:100],
        reason=rejection.reason,
        detail=detail,
    )


def _enforce_csrf(request) -> None:
    # A cookie is sent by the browser on its own, so a state-changing request authenticated by it needs the same
    # CSRF proof as a session-authenticated one (DRF's SessionAuthentication does the same).
    check = CSRFCheck(lambda _request: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")


class IdpAccessTokenAuthentication(BaseAuthentication):
    """Authenticates a person by an access token for IDP_API_AUDIENCE, from `Authorization: Bearer` or the cookie.

    No credentials: not authenticated here (DRF answers 401 with a bare `Bearer` challenge, RFC 6750 §3.1). Bad
    credentials: 401 with `error="invalid_token"` and a token.rejected event.
    """

    www_authenticate_realm = "idp"

    def authenticate(self, request):
        source = None
        try:
            token, source = presented_access_token(request)
            if token is None:
                return None
            verified = access_token_verify(token=token)
        except AccessTokenRejected as rejection:
            token_rejection_record(request=request, rejection=rejection, source=source)
            request._idp_bearer_error = "invalid_token"
            raise exceptions.AuthenticationFailed(
                {"error": "invalid_token", "error_description": rejection.description}
            ) from None
        if source == SOURCE_COOKIE and request.method not in SAFE_METHODS:
            _enforce_csrf(_django_request(request))
        return verified.user, verified

    def authenticate_header(self, request) -> str:
        # RFC 6750 §3: name the error only when a token was presented and refused.
        error = getattr(request, "_idp_bearer_error", None)
        if error:
            return f'Bearer realm="{self.www_authenticate_realm}", error="{error}"'
        return f'Bearer realm="{self.www_authenticate_realm}"'
