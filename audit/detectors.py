"""Detectors: turn a run of failure events into one alert per window, saying what they saw.

`audit.services.event_record` shows each stored event of a watched type to `alerts_for`, which returns the alerts
it calls for; the service stores them as `alert.*` events (outcome "alert"). Alerts are never shown to detectors,
so an alert cannot raise another. Each question a detector asks is one indexed query, keyed by what the attack
has in common: are there at least threshold such events (or distinct IPs, or accounts) in the window? It reads at
most that many rows, so a long attack does not make each further failure dearer; the full picture for the alert's
detail is read only when an alert is due. Event types no detector watches (every success) cost no query at all.

- Brute force: one account fails IDP_ALERT_BRUTE_FORCE_FAILURES times in the window (login.failed by username).
- Password spraying: one IP fails against IDP_ALERT_SPRAYING_ACCOUNTS different accounts (login.failed by ip).
- Credential stuffing: one account fails from IDP_ALERT_STUFFING_IPS different IPs (login.failed by username).
- Refresh-token reuse: a rotated refresh token presented again (RFC 9700 §4.14.2: likely stolen); one is enough.
- Token validation burst: IDP_ALERT_VALIDATION_FAILURES token.rejected / token.failed events from one client or
  from one IP.

The window is the IDP_ALERT_WINDOW_SECONDS before the event. An alert is raised at most once per window for the
same type and key (an account, an IP, a client or a token family): the key is stored as detail["alert_key"], and
`alert_duplicates` finds an earlier alert with it through the (type, created_at) index. A threshold below 1 turns
its detector off.

Each process also remembers the alerts it raised or found raised (`raised`): while one is inside the window a new
event looks back over, its detector skips both questions for that key (`_due`), since they could only find the same
alert again. A sustained burst, such as a client polling with an expired token, then costs each further failure the
event's own append and no detector query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import Lower

from audit import events
from audit.models import Event

logger = logging.getLogger("audit")

SAMPLE_SIZE = 10  # accounts or IPs named in an alert's detail


@dataclass(frozen=True)
class Alert:
    """An alert a detector calls for; `key` names what it is about, e.g. "account:alice" or "ip:192.0.2.7"."""

    type: str
    key: str
    reason: str  # the kind of key: account, ip, client or token_family
    window_start: datetime
    detail: dict[str, Any] = field(default_factory=dict)
    username: str = ""
    user_id: int | None = None
    client_id: str = ""
    ip: str | None = None


class RaisedAlerts:
    """The alerts this process stored, by (type, key), and when each was raised; the oldest are forgotten past
    `limit`, so a flood of distinct keys cannot grow it without bound. Forgetting only costs a query."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._raised: dict[tuple[str, str], datetime] = {}

    def since(self, *, type: str, key: str, since: datetime) -> bool:
        """Whether this process raised this alert after `since`."""
        raised_at = self._raised.get((type, key))
        return raised_at is not None and raised_at > since

    def remember(self, *, type: str, key: str, at: datetime) -> None:
        with self._lock:
            self._raised.pop((type, key), None)
            while len(self._raised) >= self._limit:
                del self._raised[next(iter(self._raised))]
            self._raised[type, key] = at

    def clear(self) -> None:
        with self._lock:
            self._raised.clear()


raised = RaisedAlerts()


def alert_duplicates(*, type: str, key: str, since: datetime) -> QuerySet[Event]:
    """Alerts of this type and key raised after `since`: while any exists, the same alert is not raised again."""
    return Event.objects.filter(type=type, created_at__gt=since, detail__alert_key=key)


def _due(*, type: str, key: str, since: datetime, reached: Callable[[], bool] = lambda: True) -> bool:
    """Whether the alert of this type and key is due: `reached()` (its threshold, a bounded read) holds and no such
    alert was raised after `since`. This process's memory is asked first, then the database; an alert found there
    (raised by another process) is remembered once the reading transaction commits."""
    if raised.since(type=type, key=key, since=since) or not reached():
        return False
    raised_at = (alert_duplicates(type=type, key=key, since=since).order_by("-created_at")
                 .values_list("created_at", flat=True).first())
    if raised_at is None:
        return True
    transaction.on_commit(lambda: raised.remember(type=type, key=key, at=raised_at))
    return False


def _window(event: Event) -> tuple[datetime, int]:
    seconds = settings.IDP_ALERT_WINDOW_SECONDS
    return event.created_at - timedelta(seconds=seconds), seconds


def _reaches(recent: QuerySet[Event], threshold: int, distinct: str | None = None) -> bool:
    """Whether `recent` holds `threshold` rows (or distinct values of the column `distinct`), reading at most that
    many: under a long attack every further failure costs the same small, bounded read, not a count of them all."""
    rows = recent.order_by()
    if distinct is not None:
        rows = rows.values(distinct).distinct()
    return rows[:threshold].count() >= threshold


def _summary(recent: QuerySet[Event], seconds: int, threshold: int) -> dict[str, Any]:
    """What the detector saw, read in full once an alert is due (rare, so the cost is of no matter)."""
    seen = recent.aggregate(
        failures=Count("id"),
        distinct_ips=Count("ip", distinct=True),
        distinct_accounts=Count(Lower("username"), distinct=True, filter=~Q(username="")),
        first=Min("created_at"),
        last=Max("created_at"),
    )
    return {
        "window_seconds": seconds,
        "threshold": threshold,
        "failures": seen["failures"],
        "distinct_ips": seen["distinct_ips"],
        "distinct_accounts": seen["distinct_accounts"],
        "first_seen": seen["first"].isoformat(timespec="seconds") if seen["first"] else None,
        "last_seen": seen["last"].isoformat(timespec="seconds") if seen["last"] else None,
        "reasons": _reasons(recent),
    }


def _sample(recent: QuerySet[Event], column: str) -> list[str]:
    # `ip` is the one nullable column; the others are blank when unknown. Ordered by the column itself: the
    # model's default ordering would defeat DISTINCT.
    values = recent.exclude(**{column: None if column == "ip" else ""}).order_by(column)
    return list(values.values_list(column, flat=True).distinct()[:SAMPLE_SIZE])


def _reasons(recent: QuerySet[Event]) -> list[dict[str, Any]]:
    # A list of pairs, not {reason: count}: a reason such as bad_password would read as a secret key to `scrub`.
    counted = recent.order_by().values("reason").annotate(count=Count("id")).order_by("-count", "reason")
    return [{"reason": row["reason"], "count": row["count"]} for row in counted]


def _account_failures(event: Event) -> list[Alert]:
    """Brute force (failures) and credential stuffing (distinct IPs) against one account's sign-in."""
    if not event.username:
        return []
    since, seconds = _window(event)
    recent = Event.objects.filter(type=events.LOGIN_FAILED, username=event.username, created_at__gt=since)
    key = f"account:{event.username}"
    found = []
    for alert_type, threshold, rows in (
        (events.ALERT_BRUTE_FORCE, settings.IDP_ALERT_BRUTE_FORCE_FAILURES, recent),
        (events.ALERT_CREDENTIAL_STUFFING, settings.IDP_ALERT_STUFFING_IPS, recent.filter(ip__isnull=False)),
    ):
        distinct = "ip" if alert_type == events.ALERT_CREDENTIAL_STUFFING else None
        if threshold < 1 or not _due(type=alert_type, key=key, since=since,
                                     reached=partial(_reaches, rows, threshold, distinct)):
            continue
        detail = {**_summary(recent, seconds, threshold), "ips": _sample(recent, "ip")}
        found.append(Alert(type=alert_type, key=key, reason="account", window_start=since, detail=detail,
                           username=event.username, user_id=event.user_id))
    return found


def _password_spraying(event: Event) -> list[Alert]:
    """One IP's failed sign-ins against many accounts (told apart without regard to case)."""
    threshold = settings.IDP_ALERT_SPRAYING_ACCOUNTS
    if not event.ip or threshold < 1:
        return []
    since, seconds = _window(event)
    recent = Event.objects.filter(type=events.LOGIN_FAILED, ip=event.ip, created_at__gt=since)
    key = f"ip:{event.ip}"
    if not _due(type=events.ALERT_PASSWORD_SPRAYING, key=key, since=since,
                reached=partial(_reaches, recent.annotate(account=Lower("username")), threshold, "account")):
        return []
    detail = {**_summary(recent, seconds, threshold), "accounts": _sample(recent, "username")}
    return [Alert(type=events.ALERT_PASSWORD_SPRAYING, key=key, reason="ip", window_start=since, detail=detail,
                  ip=event.ip)]


def _refresh_token_reuse(event: Event) -> list[Alert]:
    """A rotated refresh token presented again: the family (or, without one, the client and user) is the key."""
    since, seconds = _window(event)
    family = event.detail.get("token_family") if isinstance(event.detail, dict) else None
    recent = Event.objects.filter(type=events.TOKEN_REFRESH_REUSED, created_at__gt=since)
    if family:
        key, reason = f"token_family:{family}", "token_family"
        recent = recent.filter(detail__token_family=family)
    else:
        key, reason = f"client:{event.client_id}|account:{event.username}", "client"
        recent = recent.filter(client_id=event.client_id, username=event.username)
    if not _due(type=events.ALERT_REFRESH_TOKEN_REUSE, key=key, since=since):  # one reuse is enough
        return []
    detail = {**_summary(recent, seconds, 1), "token_family": family or "", "ips": _sample(recent, "ip")}
    return [Alert(type=events.ALERT_REFRESH_TOKEN_REUSE, key=key, reason=reason, window_start=since, detail=detail,
                  username=event.username, user_id=event.user_id, client_id=event.client_id, ip=event.ip)]


def _validation_burst(event: Event) -> list[Alert]:
    """Many refused tokens (token.rejected) or token-endpoint failures (token.failed) from one client or one IP."""
    threshold = settings.IDP_ALERT_VALIDATION_FAILURES
    if threshold < 1:
        return []
    since, seconds = _window(event)
    found = []
    for reason, column, value in (("client", "client_id", event.client_id), ("ip", "ip", event.ip)):
        if not value:
            continue
        recent = Event.objects.filter(
            type__in=(events.TOKEN_REJECTED, events.TOKEN_FAILED), created_at__gt=since, **{column: value}
        )
        key = f"{reason}:{value}"
        if not _due(type=events.ALERT_TOKEN_VALIDATION_BURST, key=key, since=since,
                    reached=partial(_reaches, recent, threshold)):
            continue
        detail = _summary(recent, seconds, threshold)
        if column == "client_id":
            detail["ips"] = _sample(recent, "ip")
            subject = {"client_id": value}
        else:
            detail["clients"] = _sample(recent, "client_id")
            subject = {"ip": value}
        found.append(Alert(type=events.ALERT_TOKEN_VALIDATION_BURST, key=key, reason=reason, window_start=since,
                           detail=detail, **subject))
    return found


_DETECTORS = {
    events.LOGIN_FAILED: (_account_failures, _password_spraying),
    events.TOKEN_REFRESH_REUSED: (_refresh_token_reuse,),
    events.TOKEN_REJECTED: (_validation_burst,),
    events.TOKEN_FAILED: (_validation_burst,),
}


def watches(event_type: str) -> bool:
    """Whether any detector reads events of this type (never an alert's: alerts do not raise alerts)."""
    return event_type in _DETECTORS


def alerts_for(event: Event) -> list[Alert]:
    """The alerts this stored event calls for. Never raises: a failing detector is logged and skipped."""
    found: list[Alert] = []
    for detector in _DETECTORS.get(event.type, ()):
        try:
            # Inside a caller's transaction a failed query would poison it (PostgreSQL); a savepoint contains it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                found.extend(detector(event))
        except Exception:  # noqa: BLE001 - a detector must never cost an event or a request
            logger.exception("audit detector %s failed on event #%s", detector.__name__, event.seq)
    return found
