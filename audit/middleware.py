"""Request metrics: how long each request took, under its URL pattern, for the latency histograms at /metrics."""

from __future__ import annotations

import logging
import time

from audit import metrics

logger = logging.getLogger("audit")

UNMATCHED = "unmatched"


def _route(request) -> str | None:
    """The URL pattern that served the request ("unmatched" if none did); None for /metrics itself."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    if match.url_name == "metrics" and not match.namespace:
        # Prometheus already times its own scrapes (scrape_duration_seconds); counting them here is noise.
        return None
    return "/" + (match.route or "")


class RequestMetricsMiddleware:
    """Times the whole request (it is the first middleware) and counts it by route, method and status class.

    Labels are the URL pattern, never the path, so the number of series stays bounded whatever clients send.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        try:
            route = _route(request)
            if route is not None:
                metrics.request_observe(
                    route=route,
                    method=request.method or "",
                    status=response.status_code,
                    seconds=time.perf_counter() - started,
                )
        except Exception:  # noqa: BLE001 - metrics must never fail a request that has already succeeded
            logger.exception("request metrics could not be recorded")
        return response
