"""The token endpoint: django-oauth-toolkit's TokenView, refusing what it would route around oauthlib."""

import base64
import binascii
from functools import wraps

from django.http import HttpResponse, JsonResponse
from oauth2_provider import views as dot
from oauth2_provider.signals import app_authorized

from idp import token_audit
from idp.constants import SUPPORTED_GRANT_TYPES

# The endpoint named in a refusal's audit event, by the URL name the view is mounted under (idp/urls.py).
_ENDPOINTS = {"token": token_audit.ENDPOINT_TOKEN, "revoke-token": token_audit.ENDPOINT_REVOCATION,
              "introspect": token_audit.ENDPOINT_INTROSPECTION}


def token_error(error: str, description: str, status: int = 400) -> JsonResponse:
    """An RFC 6749 §5.2 error response."""
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _carries_nul(request) -> bool:
    values = [*request.POST.values(), *request.GET.values()]
    # META rather than request.headers, which would build a dict of every header for this one.
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            values.append(base64.b64decode(credentials).decode("utf-8", "replace"))
        except (binascii.Error, ValueError):
            pass
    return any("\x00" in value for value in values)


def refuse_nul_bytes(view):
    """No identifier, code or secret contains a NUL byte, and PostgreSQL refuses to compare one: answer 400."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if _carries_nul(request):
            match = request.resolver_match
            token_audit.token_failure_record(
                request=request, error="invalid_request",
                endpoint=_ENDPOINTS.get(match.url_name if match else "", token_audit.ENDPOINT_TOKEN),
                detail={"cause": "nul_byte"},
            )
            return token_error("invalid_request", "Parameters must not contain NUL bytes.")
        return view(request, *args, **kwargs)

    return wrapper


def _refused(request, error: str, description: str) -> JsonResponse:
    token_audit.token_failure_record(request=request, error=error,
                                     detail={"grant_type": token_audit.clean(request.POST.get("grant_type"))})
    return token_error(error, description)


class RevokeTokenView(dot.RevokeTokenView):
    def post(self, request, *args, **kwargs):
        return refuse_nul_bytes(super().post)(request, *args, **kwargs)


class TokenView(dot.TokenView):
    def post(self, request, *args, **kwargs):
        return refuse_nul_bytes(self._post)(request, *args, **kwargs)

    def authorization_flow_token_response(self, request, *args, **kwargs):
        # DOT reads the new token's row back only to send `app_authorized`; nothing here listens to it, so skip
        # that query on every token unless a receiver is connected.
        if app_authorized.has_listeners():
            return super().authorization_flow_token_response(request, *args, **kwargs)
        url, headers, body, status = self.create_token_response(request)
        response = HttpResponse(content=body, status=status)
        for name, value in headers.items():
            response[name] = value
        return response

    def _post(self, request, *args, **kwargs):
        grant_type = request.POST.get("grant_type", "")
        # RFC 6749 §5.2: a missing parameter is invalid_request (oauthlib would guess authorization_code).
        if not grant_type:
            return _refused(request, "invalid_request", "The grant_type parameter is missing.")
        # DOT hands device_code requests to its own handler before oauthlib sees them; this IdP has no device flow.
        if grant_type not in SUPPORTED_GRANT_TYPES:
            return _refused(request, "unsupported_grant_type", f"The grant type {grant_type!r} is not supported.")
        return super().post(request, *args, **kwargs)
