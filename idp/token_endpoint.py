"""The token endpoint: django-oauth-toolkit's TokenView, refusing what it would route around oauthlib."""

from django.http import JsonResponse
from oauth2_provider import views as dot

from idp.constants import SUPPORTED_GRANT_TYPES


def token_error(error: str, description: str, status: int = 400) -> JsonResponse:
    """An RFC 6749 §5.2 error response."""
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


class TokenView(dot.TokenView):
    def post(self, request, *args, **kwargs):
        grant_type = request.POST.get("grant_type", "")
        # RFC 6749 §5.2: a missing parameter is invalid_request (oauthlib would guess authorization_code).
        if not grant_type:
            return token_error("invalid_request", "The grant_type parameter is missing.")
        # DOT hands device_code requests to its own handler before oauthlib sees them; this IdP has no device flow.
        if grant_type not in SUPPORTED_GRANT_TYPES:
            return token_error("unsupported_grant_type", f"The grant type {grant_type!r} is not supported.")
        return super().post(request, *args, **kwargs)
