"""Who sent a request: the client IP (trusting X-Forwarded-For only behind a trusted proxy) and its user agent."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _valid_ip(value: str) -> str | None:
    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's IP address, normalised; X-Forwarded-For is read only when IDP_TRUST_PROXY is on."""
    if request is None:
        return None
    if settings.IDP_TRUST_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop for hop in forwarded.split(",") if hop.strip()]
        # The trusted proxy appends the address it saw; entries further left were written by the client.
        if len(hops) >= settings.IDP_TRUSTED_PROXY_COUNT:
            ip = _valid_ip(hops[-settings.IDP_TRUSTED_PROXY_COUNT])
            if ip:
                return ip
    return _valid_ip(request.META.get("REMOTE_ADDR", ""))


def user_agent(request) -> str:
    """The request's User-Agent, cut to what an event stores."""
    if request is None:
        return ""
    return request.META.get("HTTP_USER_AGENT", "")[:256]
