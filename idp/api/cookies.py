"""The two token cookies of the cookie API: set with the same flags every time, and cleared with the same path.

Both are HttpOnly (no script can read a token: an XSS cannot exfiltrate it) and SameSite=Strict (no cross-site request
carries them; CSRF tokens guard same-site ones), and Secure under an https issuer, where their names also carry the
__Host- and __Secure- prefixes (RFC 6265bis §4.1.3) so that no sibling host or plain-http page can plant them. The
refresh cookie is sent only to the refresh endpoint, so no other request ever exposes the long-lived token.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse

SAME_SITE = "Strict"
ACCESS_COOKIE_PATH = "/"  # a __Host- cookie must have Path=/
EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


def refresh_cookie_path() -> str:
    """The only path the browser sends the refresh cookie to: the refresh endpoint."""
    return reverse("idp_api:refresh")


def _set(response: HttpResponse, *, name: str, value: str, max_age: int, path: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        expires=EXPIRED if max_age == 0 else None,
        path=path,
        secure=settings.IDP_ISSUER_IS_HTTPS,
        httponly=True,
        samesite=SAME_SITE,
    )


def token_cookies_set(response: HttpResponse, *, access_token: str, refresh_token: str, refresh_max_age: int) -> None:
    """Put a fresh token pair into the response's cookies, both living as long as the refresh token.

    The access cookie outlives its token on purpose: the refresh cookie is sent only to the refresh path, so sign-out
    finds the family to revoke through the access token, which an expired but genuine token still names. Every
    other use checks `exp`, so a browser holding an expired one gets 401 and refreshes.
    """
    _set(response, name=settings.IDP_ACCESS_COOKIE_NAME, value=access_token, max_age=refresh_max_age,
         path=ACCESS_COOKIE_PATH)
    _set(response, name=settings.IDP_REFRESH_COOKIE_NAME, value=refresh_token, max_age=refresh_max_age,
         path=refresh_cookie_path())


def token_cookies_clear(response: HttpResponse) -> None:
    """Tell the browser to drop both token cookies (same name, path and flags; Max-Age=0)."""
    _set(response, name=settings.IDP_ACCESS_COOKIE_NAME, value="", max_age=0, path=ACCESS_COOKIE_PATH)
    _set(response, name=settings.IDP_REFRESH_COOKIE_NAME, value="", max_age=0, path=refresh_cookie_path())
