"""Endpoints of the cookie token API: CSRF token, sign-in, refresh, sign-out, and the signed-in person's profile.

The three POSTs are plain Django views, so CsrfViewMiddleware checks them like any form post (DRF views would be
CSRF-exempt), and each is also wrapped in csrf_protect so the check survives a middleware change. Every answer is
JSON and `Cache-Control: no-store`; no token ever appears in a response body, only in the HttpOnly cookies.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token, rotate_token
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from idp.api import services
from idp.api.cookies import token_cookies_clear, token_cookies_set
from idp.api_auth import AccessTokenRejected, IdpAccessTokenAuthentication, token_rejection_record
from idp.claims import user_role_names
from idp.keys import NoActiveSigningKey

# Generous for any real username or passphrase, and it bounds what one request makes the server hash.
MAX_CREDENTIAL_LENGTH = 1024
MAX_REFRESH_TOKEN_LENGTH = 256
INVALID_CREDENTIALS = {
    "error": "invalid_credentials",
    # The same words whatever went wrong (unknown user, wrong password, locked, inactive): nothing to enumerate.
    "error_description": "Sign-in failed. Check the username and password, or try again later.",
}


def _error(status: int, error: str, description: str) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _profile(user, scope: str) -> dict:
    """What the single-page client may show about the signed-in person: never a token."""
    return {
        "sub": str(user.subject),
        "username": user.get_username(),
        "email": user.email,
        "name": user.get_full_name() or user.get_username(),
        "roles": user_role_names(user),
        "scope": scope,
    }


def _credentials(request: HttpRequest) -> tuple[str, str] | None:
    """The username and password of a JSON or form body, or None when the body is not such a request."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
    else:
        body = request.POST
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return None
    if len(username) > MAX_CREDENTIAL_LENGTH or len(password) > MAX_CREDENTIAL_LENGTH:
        return None
    if "\x00" in username or "\x00" in password:  # no account has one, and PostgreSQL refuses to compare it
        return None
    return username, password


def _unavailable() -> JsonResponse:
    return _error(503, "temporarily_unavailable", "Sign-in through this API is not available right now.")


@require_GET
@never_cache
@ensure_csrf_cookie
def csrf(request: HttpRequest) -> JsonResponse:
    """The CSRF token for the POSTs below (send it as X-CSRFToken); the cookie itself is HttpOnly."""
    return JsonResponse({"csrfToken": get_token(request)})


@require_POST
@never_cache
@csrf_protect
def login(request: HttpRequest) -> JsonResponse:
    """Check the credentials (lockouts apply) and set the access and refresh cookies; answer with the profile."""
    credentials = _credentials(request)
    if credentials is None:
        return _error(400, "invalid_request", "Send a JSON or form body with a username and a password.")
    username, password = credentials
    # The authentication backend applies the lockouts and records login.succeeded / login.failed.
    user = authenticate(request, username=username, password=password)
    if user is None:
        return JsonResponse(INVALID_CREDENTIALS, status=401)
    try:
        issued = services.token_pair_issue(request=request, user=user)
    except (services.FirstPartyClientDisabled, NoActiveSigningKey):
        return _unavailable()
    update_last_login(None, user)
    # A new CSRF token after sign-in, as django.contrib.auth.login does, so a token planted before it is worthless;
    # the client reads the new one here because the CSRF cookie is HttpOnly.
    rotate_token(request)
    response = JsonResponse({**_profile(user, issued.scope), "csrfToken": get_token(request)})
    token_cookies_set(response, access_token=issued.access_token,
                      refresh_token=issued.refresh_token, refresh_max_age=issued.refresh_token_expires_in)
    return response


def _refused(response: HttpResponse) -> HttpResponse:
    token_cookies_clear(response)
    return response


@require_POST
@never_cache
@csrf_protect
def refresh(request: HttpRequest) -> HttpResponse:
    """Rotate the refresh cookie's token and set both cookies anew; any refusal clears them (RFC 9700 §4.14.2)."""
    refresh_token = request.COOKIES.get(settings.IDP_REFRESH_COOKIE_NAME, "")
    if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_LENGTH or "\x00" in refresh_token:
        return _refused(_error(401, "invalid_grant", "No usable refresh token was sent; sign in again."))
    try:
        issued = services.token_pair_refresh(request=request, refresh_token=refresh_token)
    except services.TokenRefreshRefused:
        return _refused(_error(401, "invalid_grant", "The refresh token is invalid, expired or revoked."))
    except services.FirstPartyClientDisabled:
        return _refused(_unavailable())
    response = JsonResponse({"expires_in": issued.access_token_expires_in, "scope": issued.scope})
    token_cookies_set(response, access_token=issued.access_token,
                      refresh_token=issued.refresh_token, refresh_max_age=issued.refresh_token_expires_in)
    return response


@require_POST
@never_cache
@csrf_protect
def logout(request: HttpRequest) -> HttpResponse:
    """Revoke the family of the access cookie's token and clear both cookies; 204 whatever was (not) sent."""
    # The refresh cookie never reaches this path, so the access token names the family; an expired one still does.
    access_token = request.COOKIES.get(settings.IDP_ACCESS_COOKIE_NAME, "")
    if access_token:
        try:
            services.token_family_revoke_by_access_token(request=request, token=access_token)
        except AccessTokenRejected as rejection:
            token_rejection_record(request=request, rejection=rejection, source="cookie")
    response = HttpResponse(status=204)
    token_cookies_clear(response)
    return response


class MeView(APIView):
    """GET /api/me: the person an access token for this API names (access cookie or Authorization: Bearer)."""

    authentication_classes = [IdpAccessTokenAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]

    def get(self, request: Request) -> Response:
        return Response(_profile(request.user, " ".join(request.auth.scopes)))

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"  # errors too: RFC 6750 §5.3 asks that token answers not be cached
        return response
