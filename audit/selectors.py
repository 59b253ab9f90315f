"""Reads over the event log for the admin: the known event types, failure and alert counts over time, recent alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from audit import events
from audit.models import Event

_UNITS = {
    "hour": (TruncHour, timedelta(hours=1)),
    "day": (TruncDay, timedelta(days=1)),
}


@dataclass(frozen=True)
class Bucket:
    """Failures and alerts recorded in one hour or day starting at `start`."""

    start: datetime
    failures: int
    alerts: int


def event_types() -> list[str]:
    """Every event type named in audit/events.py, sorted.

    The module holds the type names and the outcomes as string constants (and reason lists as tuples); a string
    that is not an outcome is a type.
    """
    names = vars(events)
    return sorted(
        {value for name, value in names.items() if name.isupper() and isinstance(value, str)} - set(events.OUTCOMES)
    )


def _bucket_start(moment: datetime, unit: str) -> datetime:
    moment = timezone.localtime(moment).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if unit == "day" else moment


def event_outcome_series(
    *, now: datetime, unit: str, periods: int, failure_types: tuple[str, ...] | None = None
) -> list[Bucket]:
    """Failures and alerts in each of the last `periods` hours or days, oldest first, the current one included.

    One grouped query over the (outcome, created_at) index; periods with no events are present with zeros.
    With `failure_types`, only failures of those types count (alerts of every type still do).
    """
    trunc, step = _UNITS[unit]
    last = _bucket_start(now, unit)
    starts = [last - step * i for i in range(periods - 1, -1, -1)]
    failures = Q(outcome=events.FAILURE, type__in=failure_types) if failure_types else Q(outcome=events.FAILURE)
    wanted = failures | Q(outcome=events.ALERT)
    rows = (
        Event.objects.filter(wanted, created_at__gte=starts[0], created_at__lt=last + step)
        .annotate(bucket=trunc("created_at"))
        .values("bucket", "outcome")
        .annotate(n=Count("*"))
        .order_by()
    )
    counts = {(row["bucket"], row["outcome"]): row["n"] for row in rows}
    return [
        Bucket(
            start=start, failures=counts.get((start, events.FAILURE), 0), alerts=counts.get((start, events.ALERT), 0)
        )
        for start in starts
    ]


def event_recent_alerts(*, limit: int = 20) -> QuerySet[Event]:
    """The newest alerts first, read backwards along the (outcome, created_at) index."""
    return Event.objects.filter(outcome=events.ALERT).order_by("-created_at", "-seq")[:limit]
