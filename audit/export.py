"""Events as CSV lines for the admin's export, streamed, bounded, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.db.models import QuerySet

EXPORT_ROW_LIMIT = 100_000
HEADER = ["seq", "time", "type", "outcome", "user_id", "username", "client_id", "ip", "user_agent", "reason", "detail"]
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """The file-like object csv.writer wants; it hands back each line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def csv_cell(value) -> str:
    """The cell text, with a leading apostrophe when a spreadsheet would otherwise read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _row(event) -> list[str]:
    return [
        csv_cell(value)
        for value in (
            event.seq,
            event.created_at.isoformat(timespec="microseconds"),
            event.type,
            event.outcome,
            event.user_id,
            event.username,
            event.client_id,
            event.ip,
            event.user_agent,
            event.reason,
            json.dumps(event.detail, sort_keys=True, separators=(",", ":")),
        )
    ]


def event_csv_lines(events: QuerySet, *, limit: int = EXPORT_ROW_LIMIT, chunk_size: int = 2000) -> Iterator[str]:
    """The header, then one line per event of `events`, newest first, at most `limit` events.

    Read in keyset pages along the time index rather than through one cursor: on PostgreSQL a cursor outside a
    transaction materialises the whole result before the first row, and a transaction held open for a slow
    download would pin old row versions (on SQLite, it would hold the write lock).
    """
    writer = csv.writer(_Line())
    yield writer.writerow(HEADER)
    newest_first = events.order_by("-created_at", "-seq")
    page, sent = newest_first, 0
    while sent < limit:
        wanted = min(chunk_size, limit - sent)
        rows = list(page[:wanted])
        for event in rows:
            yield writer.writerow(_row(event))
        sent += len(rows)
        if len(rows) < wanted:
            return
        last = rows[-1]
        page = newest_first.filter(created_at__lte=last.created_at).exclude(
            created_at=last.created_at, seq__gte=last.seq
        )
