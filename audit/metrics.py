"""Prometheus metrics: counters fed by every recorded event, and request latency by route.

Counters (all fed by `audit.services.event_record`, so they count exactly what the audit log records):
- idp_audit_events_total{type,outcome}, and idp_audit_events_unstored_total for events only the log line kept;
- idp_logins_total{outcome} and idp_login_failures_total{reason};
- idp_tokens_issued_total{grant_type} (from token.issued and token.exchanged detail["grant_type"]);
- idp_token_validation_failures_total{reason} (token.rejected) and idp_token_endpoint_failures_total{reason}
  (token.failed);
- idp_alerts_total{type}.
`audit.middleware.RequestMetricsMiddleware` feeds idp_http_request_duration_seconds{route,method} (a histogram)
and idp_http_requests_total{route,method,status} (status class such as "2xx").

Every label value comes from a closed set, so an attacker cannot grow the number of series: routes are URL
patterns ("unmatched" when none matched, as for a 404), methods and reasons outside the known ones count as
"other", and event types are the names in audit/events.py.

Several worker processes (gunicorn --workers N): set PROMETHEUS_MULTIPROC_DIR to an empty directory writable by
the workers, the same for all of them, and empty it before each start. prometheus_client then keeps each
process's values in files there, and /metrics adds them up across the workers. The variable is read by
prometheus_client itself when it is first imported, which is why this module reads it from the environment too
rather than from a Django setting. Without it, each process reports only its own counts.
"""

from __future__ import annotations

import functools
import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from audit import events

OTHER = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_GRANT_TYPES = frozenset(
    {
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",  # RFC 8693 §2.1
    }
)
# Every event type named in audit/events.py: the upper-case string constants that are not outcomes or reasons.
_EVENT_TYPES = frozenset(
    value for name, value in vars(events).items() if name.isupper() and isinstance(value, str)
) - set(events.OUTCOMES)

EVENTS = Counter("idp_audit_events", "Security events recorded, by type and outcome.", ["type", "outcome"])
UNSTORED = Counter("idp_audit_events_unstored", "Events the database refused; only their log line kept them.")
LOGINS = Counter("idp_logins", "Sign-in attempts, by outcome.", ["outcome"])
LOGIN_FAILURES = Counter("idp_login_failures", "Failed sign-ins, by reason.", ["reason"])
TOKENS_ISSUED = Counter("idp_tokens_issued", "Tokens issued at the token endpoint, by grant type.", ["grant_type"])
VALIDATION_FAILURES = Counter(
    "idp_token_validation_failures", "Bearer tokens refused by the IdP's own endpoints, by reason.", ["reason"]
)
TOKEN_ENDPOINT_FAILURES = Counter("idp_token_endpoint_failures", "Refused token requests, by reason.", ["reason"])
ALERTS = Counter("idp_alerts", "Alerts raised by the detectors, by type.", ["type"])
REQUEST_LATENCY = Histogram(
    "idp_http_request_duration_seconds",
    "Time from the first middleware to the response, by URL pattern and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter(
    "idp_http_requests", "Responses, by URL pattern, method and status class.", ["route", "method", "status"]
)


def _known(value: str, allowed) -> str:
    return value if value in allowed else OTHER


def event_observe(*, type: str, outcome: str, reason: str, detail: dict, stored: bool) -> None:
    """Count one recorded event in every counter it belongs to."""
    EVENTS.labels(type=_known(type, _EVENT_TYPES), outcome=_known(outcome, events.OUTCOMES)).inc()
    if not stored:
        UNSTORED.inc()
    if type == events.LOGIN_SUCCEEDED:
        LOGINS.labels(outcome=events.SUCCESS).inc()
    elif type == events.LOGIN_FAILED:
        LOGINS.labels(outcome=events.FAILURE).inc()
        LOGIN_FAILURES.labels(reason=_known(reason, events.LOGIN_FAILURE_REASONS)).inc()
    elif type in (events.TOKEN_ISSUED, events.TOKEN_EXCHANGED):
        TOKENS_ISSUED.labels(grant_type=_known(str(detail.get("grant_type", "")), _GRANT_TYPES)).inc()
    elif type == events.TOKEN_REJECTED:
        VALIDATION_FAILURES.labels(reason=_known(reason, events.TOKEN_REJECTED_REASONS)).inc()
    elif type == events.TOKEN_FAILED:
        TOKEN_ENDPOINT_FAILURES.labels(reason=_known(reason, events.TOKEN_FAILURE_REASONS)).inc()
    if outcome == events.ALERT:
        ALERTS.labels(type=_known(type, _EVENT_TYPES)).inc()


# Each request's two series. Metric.labels() validates and looks them up under a lock on every call; their labels
# are bounded (URL patterns, _METHODS, five status classes), so each is looked up once per process.
@functools.cache
def _latency_series(route: str, method: str) -> Histogram:
    return REQUEST_LATENCY.labels(route=route, method=method)


@functools.cache
def _request_series(route: str, method: str, status_class: int) -> Counter:
    return REQUESTS.labels(route=route, method=method, status=f"{status_class}xx")


def request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency under its URL pattern."""
    method = _known(method, _METHODS)
    _latency_series(route, method).observe(seconds)
    _request_series(route, method, status // 100).inc()


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus text format 0.0.4, and its content type; summed across workers when
    PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4
