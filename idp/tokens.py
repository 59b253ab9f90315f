"""Token minting: RFC 9068 JWT access tokens and opaque refresh tokens, called by oauthlib through DOT's settings."""

from __future__ import annotations

import hashlib
import secrets
import time

import jwt
from django.conf import settings
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from idp.claims import access_token_claims
from idp.constants import ACCESS_TOKEN_TYP, ERROR_INVALID_TARGET, GRANT_TYPE_CLIENT_CREDENTIALS
from idp.keys import active_signing_key
from idp.oauth_request import carried

REFRESH_TOKEN_BYTES = 32  # 256 bits


def token_checksum(token: str) -> str:
    """The SHA-256 checksum (hex) under which django-oauth-toolkit stores an access or refresh token, and the
    IdP its authorization codes: never the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _requested_audiences(request) -> list[str]:
    # RFC 8707 `resource` may repeat, and oauthlib keeps only the last value, so read the decoded body.
    # `audience` is accepted as a synonym (RFC 8693 §2.1), as Keycloak and Auth0 clients send it.
    body = getattr(request, "decoded_body", None) or []
    values = [value for name, value in body if name in ("resource", "audience")]
    if not values:
        resource = getattr(request, "resource", None)
        if isinstance(resource, str) and resource:
            values = [resource]
    return list(dict.fromkeys(values))


def resolve_audience(request) -> str:
    """The `aud` of the token being issued: the requested resource when the client may use it, else its default.

    Raises oauthlib's CustomOAuth2Error `invalid_target` (RFC 8707 §2) for a resource the client may not use or
    for several at once (one audience per token keeps each token usable at exactly one service).
    """
    client = request.client
    requested = _requested_audiences(request)
    if len(requested) > 1:
        raise CustomOAuth2Error(
            error=ERROR_INVALID_TARGET, description="Ask for one resource per access token.", request=request
        )
    if requested:
        if requested[0] not in client.audiences:
            raise CustomOAuth2Error(
                error=ERROR_INVALID_TARGET,
                description="This client may not obtain tokens for the requested resource.",
                request=request,
            )
        return requested[0]
    return client.default_audience or client.client_id


def signed_access_token(request) -> str:
    """An RFC 9068 access token for the request oauthlib is answering, signed with the active key."""
    exchange = carried(request, "idp_exchange", None)  # set by idp/token_exchange.py after its checks
    audience = exchange["audience"] if exchange else resolve_audience(request)
    key = active_signing_key()
    is_service_token = request.grant_type == GRANT_TYPE_CLIENT_CREDENTIALS
    claims = access_token_claims(
        issuer=settings.IDP_ISSUER,
        client=request.client,
        user=None if is_service_token else request.user,
        scopes=list(request.scopes or []),
        audience=audience,
        issued_at=int(time.time()),
        expires_in=int(request.expires_in),
        auth_time=exchange["auth_time"] if exchange else carried(request, "idp_auth_time", None),
    )
    if exchange:
        # RFC 8693 §4.1: the subject stays who it was (`sub`, `roles`); the calling client is the actor.
        claims.update(sub=exchange["sub"], roles=exchange["roles"], act=exchange["act"])
    request.idp_jti = claims["jti"]
    headers = {"kid": key.kid, "typ": ACCESS_TOKEN_TYP}
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=headers)


def opaque_refresh_token(request) -> str:
    """A 256-bit random refresh token; only its SHA-256 checksum is stored (RFC 9700 §4.14)."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
