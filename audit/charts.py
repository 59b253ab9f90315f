"""Geometry of the dashboard's bar charts, drawn as SVG by the template: no JavaScript, no inline styles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from audit.selectors import Bucket

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css_class: str
    title: str  # read as the bar's accessible name and shown as its tooltip


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    """A two-series bar chart with its scale, labels, a one-sentence summary and the numbers as table rows."""

    slug: str
    title: str
    summary: str
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    rows: list[tuple[str, int, int]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: int = TOP + PLOT_HEIGHT
    right_edge: int = WIDTH - RIGHT


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (and at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _peak(buckets: list[Bucket], attr: str, label) -> str:
    best = max(buckets, key=lambda b: getattr(b, attr))
    return f", most in {label(best.start)}" if getattr(best, attr) else ""


def outcome_bar_chart(
    *, slug: str, title: str, buckets: list[Bucket], label, long_label, label_every: int = 1
) -> Chart:
    """Failures and alerts side by side for each bucket; `label` names a bucket on the axis, `long_label` in text."""
    top = _nice_ceiling(max([1] + [max(b.failures, b.alerts) for b in buckets]))
    slot = PLOT_WIDTH / max(1, len(buckets))
    bar_width = round(slot * 0.4, 1)
    bars, x_ticks, rows = [], [], []
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot + slot * 0.1
        name = long_label(bucket.start)
        for offset, count, css_class, noun in (
            (0, bucket.failures, "bar-failure", "failure"),
            (bar_width, bucket.alerts, "bar-alert", "alert"),
        ):
            height = round(count / top * PLOT_HEIGHT, 1)
            bars.append(Bar(x=round(x + offset, 1), y=round(TOP + PLOT_HEIGHT - height, 1), width=bar_width,
                            height=height, css_class=css_class, title=f"{name}: {_plural(count, noun)}"))
        if i % label_every == 0:
            x_ticks.append(Tick(x=round(LEFT + (i + 0.5) * slot, 1), y=HEIGHT - BOTTOM + 16, text=label(bucket.start)))
        rows.append((name, bucket.failures, bucket.alerts))
    y_ticks = [
        Tick(x=LEFT - 6, y=round(TOP + PLOT_HEIGHT - PLOT_HEIGHT * share, 1), text=str(round(top * share)))
        for share in (0, 0.5, 1)
        if share != 0.5 or top % 2 == 0
    ]
    failures = sum(b.failures for b in buckets)
    alerts = sum(b.alerts for b in buckets)
    summary = (
        f"{_plural(failures, 'failure')}{_peak(buckets, 'failures', long_label)}; "
        f"{_plural(alerts, 'alert')}{_peak(buckets, 'alerts', long_label)}."
    )
    return Chart(slug=slug, title=title, summary=summary, bars=bars, x_ticks=x_ticks, y_ticks=y_ticks, rows=rows)


def hour_label(start: datetime) -> str:
    return start.strftime("%H:00")


def hour_long_label(start: datetime) -> str:
    return start.strftime("%d %b %H:00") + "–" + start.strftime("%H:59")


def day_label(start: datetime) -> str:
    return start.strftime("%a %d")


def day_long_label(start: datetime) -> str:
    return start.strftime("%a %d %b %Y")
