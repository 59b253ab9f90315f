"""RFC 7662 token introspection, for confidential clients about tokens that concern them."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import jwt
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauthlib.common import Request as OauthlibRequest

from idp.keys import signing_key_by_kid
from idp.token_endpoint import refuse_nul_bytes

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
INACTIVE = {"active": False}


def _json(payload: dict, status: int = 200, **headers) -> JsonResponse:
    response = JsonResponse(payload, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def authenticate_confidential_client(request: HttpRequest):
    """The confidential client that authenticated this request (HTTP Basic or body), or None."""
    core = get_oauthlib_core()
    uri, method, body, headers = core._extract_params(request)
    oauthlib_request = OauthlibRequest(uri, method, body, headers)
    try:
        authenticated = core.server.request_validator.authenticate_client(oauthlib_request)
    except (ValueError, UnicodeError):
        return None
    return oauthlib_request.client if authenticated else None


def _verified_claims(token: str) -> dict | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = signing_key_by_kid(kid) if isinstance(kid, str) else None
        if key is None:
            return None
        return jwt.decode(
            token, key.public_key, algorithms=[key.algorithm], issuer=settings.IDP_ISSUER,
            options={"verify_aud": False, "require": ["exp", "iat", "sub", "jti"]},
            leeway=settings.IDP_CLOCK_LEEWAY,
        )
    except jwt.InvalidTokenError:
        return None


def _access_token_response(client, token: str) -> dict:
    row = (
        AccessToken.objects.select_related("application", "user")
        .filter(token_checksum=hashlib.sha256(token.encode()).hexdigest())
        .first()
    )
    if row is None or row.is_expired() or (row.application is not None and not row.application.enabled):
        return INACTIVE
    claims = _verified_claims(token)
    if claims is None:
        return INACTIVE
    audiences = claims["aud"] if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    if row.application_id != client.pk and client.client_id not in audiences:
        return INACTIVE  # RFC 7662 §4: do not tell a client about tokens that are none of its business
    response = {
        "active": True,
        "token_type": "Bearer",
        **{name: claims[name] for name in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope",
                                              "roles", "auth_time") if name in claims},
    }
    if row.user is not None:
        response["username"] = row.user.get_username()
    return response


def _refresh_token_response(client, token: str) -> dict:
    row = (
        RefreshToken.objects.select_related("application", "user")
        .filter(token_checksum=hashlib.sha256(token.encode()).hexdigest(), revoked__isnull=True)
        .first()
    )
    if row is None or row.application_id != client.pk or not client.enabled:
        return INACTIVE
    if row.created + timedelta(seconds=client.refresh_token_idle_lifetime) <= timezone.now():
        return INACTIVE
    response = {"active": True, "token_type": "refresh_token", "client_id": client.client_id}
    if row.user is not None:
        response.update(sub=str(row.user.subject), username=row.user.get_username())
    return response


@csrf_exempt
@require_POST
@refuse_nul_bytes
def introspect(request: HttpRequest) -> JsonResponse:
    client = authenticate_confidential_client(request)
    if client is None:
        # RFC 7662 §2.1 and RFC 6749 §5.2: the caller must authenticate as a confidential client.
        return _json({"error": "invalid_client", "error_description": "Client authentication failed."}, 401,
                     WWW_Authenticate='Basic realm="idp"')
    token = request.POST.get("token", "")
    if not token:
        return _json({"error": "invalid_request", "error_description": "The token parameter is missing."}, 400)
    hint = request.POST.get("token_type_hint")
    lookups = [_access_token_response, _refresh_token_response]
    if hint == "refresh_token":
        lookups.reverse()
    for lookup in lookups:
        answer = lookup(client, token)
        if answer["active"]:
            return _json(answer)
    return _json(INACTIVE)
