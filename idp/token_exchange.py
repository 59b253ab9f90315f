"""RFC 8693 token exchange: a service trades a user's access token for one addressed to another service.

Allowed only where a TokenExchangePolicy lets the calling client exchange tokens addressed to the subject token's
audience into the requested audience. The new token keeps `sub` and `roles`, never carries more scopes than the
subject token, names the caller in `act` (RFC 8693 §4.1), lives at most IDP_TOKEN_EXCHANGE_LIFETIME and never
beyond the subject token, and comes without a refresh token.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from oauth2_provider.models import get_access_token_model
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from clients.models import GRANT_TOKEN_EXCHANGE, TokenExchangePolicy
from idp import bearer
from idp.constants import (
    ERROR_INVALID_TARGET,
    GRANT_TYPE_TOKEN_EXCHANGE,
    TOKEN_TYPE_ACCESS_TOKEN,
)
from idp.tokens import token_checksum


class InvalidTargetError(errors.OAuth2Error):
    """RFC 8693 §2.2.2: the server will not issue a token for the requested audience."""

    error = ERROR_INVALID_TARGET
    status_code = 400


def _invalid_subject(request, why: str) -> errors.InvalidRequestError:
    # RFC 8693 §2.2.2: an invalid or unacceptable subject_token is an `invalid_request`.
    request.idp_failure_reason = "invalid_subject_token"
    return errors.InvalidRequestError(description=f"The subject_token is not acceptable: {why}.", request=request)


_SUBJECT_PROBLEMS = {
    bearer.MALFORMED: "it is not an access token of this IdP",
    bearer.BAD_SIGNATURE: "it was not signed by this IdP",
    bearer.EXPIRED: "it has expired",
    bearer.WRONG_ISSUER: "its signature or claims are invalid",
    bearer.WRONG_TYPE: "it is not an access token (RFC 9068 typ at+jwt)",
}


def _subject_claims(request, token: str) -> dict:
    """The verified claims of a subject token this IdP issued and has not revoked; raises invalid_request."""
    try:
        claims = bearer.access_token_claims(token)
    except bearer.TokenInvalid as invalid:
        raise _invalid_subject(request, _SUBJECT_PROBLEMS[invalid.reason]) from None
    checksum = token_checksum(token)
    row = (get_access_token_model().objects.filter(token_checksum=checksum)
           .select_related("application", "user").only("application__enabled", "user__is_active").first())
    if row is None:
        raise _invalid_subject(request, "it has been revoked")
    # A disabled client's tokens stop being accepted (clients/services.py client_disable), here as everywhere.
    if row.application is None or not row.application.enabled:
        raise _invalid_subject(request, "its client has been disabled")
    if row.user is not None and not row.user.is_active:
        raise _invalid_subject(request, "its user has been locked")
    return claims


def _one_value(request, name: str) -> str | None:
    values = [value for key, value in (request.decoded_body or []) if key == name]
    if len(values) > 1:
        raise errors.InvalidRequestError(description=f"Give {name} once.", request=request)
    return values[0] if values else None


class TokenExchangeGrant(GrantTypeBase):
    """oauthlib grant handler for `urn:ietf:params:oauth:grant-type:token-exchange`."""

    def create_token_response(self, request, token_handler):
        headers = self._get_default_headers()
        try:
            self.validate_token_request(request)
        except errors.OAuth2Error as error:
            headers.update(error.headers)
            return headers, error.json, error.status_code
        token = token_handler.create_token(request, refresh_token=False)
        token.pop("refresh_token", None)
        token["issued_token_type"] = TOKEN_TYPE_ACCESS_TOKEN  # RFC 8693 §2.2.1: REQUIRED
        # idp/token_audit.py records the one token.exchanged event from request.idp_exchange.
        self.request_validator.save_token(token, request)
        return headers, json.dumps(token), 200

    def validate_token_request(self, request) -> None:
        if request.grant_type != GRANT_TYPE_TOKEN_EXCHANGE:
            raise errors.UnsupportedGrantTypeError(request=request)
        for param in ("grant_type", "scope", "subject_token", "subject_token_type", "requested_token_type"):
            if param in request.duplicate_params:
                raise errors.InvalidRequestError(description=f"Duplicate {param} parameter.", request=request)
        # RFC 8693 §2.1 leaves client authentication to RFC 6749 §3.2.1; only confidential clients exchange here.
        self.validate_client_confidential(request)
        if GRANT_TOKEN_EXCHANGE not in request.client.grant_types:
            request.idp_failure_reason = "unauthorized_client"
            raise errors.UnauthorizedClientError(request=request)

        subject_token = _one_value(request, "subject_token")
        subject_token_type = _one_value(request, "subject_token_type")
        if not subject_token or not subject_token_type:
            raise errors.InvalidRequestError(
                description="subject_token and subject_token_type are required (RFC 8693 §2.1).", request=request
            )
        if subject_token_type != TOKEN_TYPE_ACCESS_TOKEN:
            raise errors.InvalidRequestError(
                description="Only access tokens can be exchanged here.", request=request
            )
        if _one_value(request, "actor_token") is not None:
            raise errors.InvalidRequestError(description="actor_token is not supported; the caller is the actor.",
                                             request=request)
        requested_type = _one_value(request, "requested_token_type")
        if requested_type not in (None, TOKEN_TYPE_ACCESS_TOKEN):
            raise errors.InvalidRequestError(description="Only access tokens can be issued.", request=request)
        targets = [value for key, value in (request.decoded_body or []) if key in ("audience", "resource")]
        if len(set(targets)) != 1:
            raise errors.InvalidRequestError(
                description="Name exactly one target with `audience` (or `resource`).", request=request
            )
        target = targets[0]

        subject = _subject_claims(request, subject_token)
        subject_audiences = subject["aud"] if isinstance(subject["aud"], list) else [subject["aud"]]
        allowed = TokenExchangePolicy.objects.filter(
            client=request.client, subject_audience__in=subject_audiences, target_audience=target
        ).values_list("subject_audience", flat=True).first()
        if allowed is None:
            request.idp_failure_reason = "exchange_not_allowed"
            raise InvalidTargetError(
                description="This client may not exchange this token for the requested audience.", request=request
            )

        # RFC 8693 §2.1 / RFC 6749 §3.3: the new token never carries a scope the subject token lacked.
        subject_scopes = str(subject.get("scope", "")).split()
        requested = request.scope.split() if request.scope else subject_scopes
        if not set(requested) <= set(subject_scopes):
            raise errors.InvalidScopeError(
                description="An exchanged token cannot carry scopes the subject token lacks.", request=request
            )
        request.scopes = requested

        user = None
        if subject["sub"] != subject["client_id"]:  # a user's token, not a service's own
            user = get_user_model().objects.filter(subject=subject["sub"]).first()
            if user is None or not user.is_active:
                raise _invalid_subject(request, "its user no longer exists or is disabled")
        request.user = user
        previous_actor = subject.get("act")
        act = {"sub": request.client.client_id}
        if isinstance(previous_actor, dict):
            act["act"] = previous_actor  # RFC 8693 §4.1: the chain of delegation, newest first
        request.idp_exchange = {
            "sub": subject["sub"],
            "roles": list(subject.get("roles", [])),
            "act": act,
            "audience": target,
            "subject_audience": allowed,
            "subject_jti": subject["jti"],
            "subject_exp": int(subject["exp"]),
            "auth_time": subject.get("auth_time"),
        }

