"""Django middleware: validates a Bearer token when one is sent, sets `request.token_claims`, rejects when told to.

`request.token_claims` is the verified Claims, or None when the request carries no token. A token that is sent but
invalid is always answered with 401 (RFC 6750 §3.1); a missing token is answered with 401 only when the setting's
`REQUIRE_TOKEN` is on. Paths under `EXEMPT_PATHS` (health checks, say) are passed through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from idp_resource_server.bearer import bearer_token, www_authenticate
from idp_resource_server.django_conf import django_validator, resource_server_settings
from idp_resource_server.errors import TokenError, TokenMissing

logger = logging.getLogger("idp_resource_server")


def error_response(error: TokenError, *, realm: str) -> JsonResponse:
    """The JSON answer to a refused token: RFC 6750 §3 status and challenge, never cached."""
    body = {"error_description": error.description}
    if error.error:
        body = {"error": error.error, **body}
    response = JsonResponse(body, status=error.status)
    if error.status in (401, 403):
        response["WWW-Authenticate"] = www_authenticate(error, realm=realm)
    response["Cache-Control"] = "no-store"
    return response


class BearerTokenMiddleware:
    """Place after SecurityMiddleware; views then read `request.token_claims`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        settings = resource_server_settings()
        request.token_claims = None
        if any(request.path.startswith(prefix) for prefix in settings.exempt_paths):
            return self.get_response(request)
        try:
            request.token_claims = django_validator().validate(bearer_token(request.headers.get("Authorization")))
        except TokenMissing as missing:
            if settings.require_token:
                return error_response(missing, realm=settings.realm)
        except TokenError as error:
            logger.info("Refused an access token for %s: %s", request.path, error.reason)
            return error_response(error, realm=settings.realm)
        return self.get_response(request)
