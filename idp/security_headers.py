"""Security headers on every response: a strict Content-Security-Policy and a Permissions-Policy.

The other security headers come from Django itself, configured in idp/settings.py: `X-Content-Type-Options`,
`Referrer-Policy`, `Cross-Origin-Opener-Policy` and (https only) `Strict-Transport-Security` from
SecurityMiddleware, and `X-Frame-Options: DENY` from XFrameOptionsMiddleware.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# Every page is served from this origin: no inline script or style, no third-party asset, no plugin.
# - `script-src 'self'` without 'unsafe-inline' (CSP Level 3 §6.1.11): an injected <script> or on* attribute never
#   runs, so an HTML-injection bug cannot become script execution on the sign-in pages.
# - `style-src 'self'` also refuses style="" attributes. Django 5.2's admin needs neither inline scripts nor
#   inline styles for the pages the IdP uses (checked in a real browser by tests/idp/test_security_headers.py).
# - `base-uri 'none'`: an injected <base> cannot re-point the relative URLs of scripts and forms.
# - `frame-ancestors 'none'` (with X-Frame-Options: DENY for older browsers): no page can be framed, so the
#   consent and sign-in buttons cannot be clickjacked (RFC 6749 §10.13, RFC 9700 §4.16).
# - No `form-action`: Chromium applies it to every redirect that follows a form submission, so after the login or
#   consent POST the 302 to the client's registered redirect_uri (another origin) would be blocked, and listing
#   every client's redirect URIs here would be both huge and stale. Our forms post to this origin anyway.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

# Powerful browser features no page of an identity provider needs; `()` is the empty allowlist (W3C Permissions
# Policy §5). Only features Chromium recognises are listed, so browsers log no "unrecognised feature" warnings.
# WebAuthn (publickey-credentials-*) is left alone on purpose: a passkey second factor needs it on this origin.
DENIED_FEATURES = (
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "geolocation",
    "gyroscope",
    "hid",
    "idle-detection",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
)
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in DENIED_FEATURES)


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and Permissions-Policy to every response.

    A view that needs a stricter policy (for example `default-src 'none'` on a JSON API) may set its own header;
    it is kept as it is. No view of the IdP loosens the policy.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        # XFrameOptionsMiddleware sits innermost, so a response made further out (a 400 for a foreign Host header,
        # raised in CommonMiddleware) never passes it; frame-ancestors covers modern browsers, this the rest.
        if not getattr(response, "xframe_options_exempt", False):
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
