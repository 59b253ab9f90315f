"""/metrics: Prometheus text for the scraper, behind a bearer token or, without one, for loopback clients only."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audit import metrics


def _from_loopback_directly(request: HttpRequest) -> bool:
    """Whether the peer is a loopback address and no proxy stands between: behind a proxy on the same host every
    client arrives from loopback, so a forwarded request, or any request when IDP_TRUST_PROXY is on, is refused."""
    if settings.IDP_TRUST_PROXY or "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        ip = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    # An IPv4 client on a dual-stack socket shows up as ::ffff:127.0.0.1.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _bearer_token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # RFC 6750 §2.1: the scheme is case-insensitive. Compared in constant time so the token cannot be guessed
    # byte by byte from response times.
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def _unauthorized(error: str | None) -> HttpResponse:
    response = HttpResponse("A valid bearer token is required.\n", status=401, content_type="text/plain")
    # RFC 6750 §3: name the scheme; say invalid_token only when a token was sent (§3.1).
    challenge = 'Bearer realm="metrics"' + (f', error="{error}"' if error else "")
    response["WWW-Authenticate"] = challenge
    return response


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics in Prometheus text format. With IDP_METRICS_TOKEN set, only for `Authorization: Bearer` with
    that token (401 otherwise); without it, only for a loopback REMOTE_ADDR (403 otherwise)."""
    expected = settings.IDP_METRICS_TOKEN
    if expected:
        if not _bearer_token_matches(request, expected):
            return _unauthorized("invalid_token" if "Authorization" in request.headers else None)
    # REMOTE_ADDR, never X-Forwarded-For, which any client can write.
    elif not _from_loopback_directly(request):
        return HttpResponse(
            "Metrics are served to loopback clients only; set IDP_METRICS_TOKEN to scrape from elsewhere.\n",
            status=403,
            content_type="text/plain",
        )
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
