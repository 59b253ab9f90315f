"""The one way to record a security event: stored in the hash chain, written as a JSON log line, counted in the
metrics and shown to the detectors, which may raise alerts (audit/detectors.py)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit import chain, detectors, events, metrics, writer
from audit.models import ChainHead, Event
from audit.request_meta import client_ip, user_agent

logger = logging.getLogger("audit.events")
failure_logger = logging.getLogger("audit")

REDACTED = "[redacted]"
# Keys that hold a secret: any *token (access_token, subject_token...), passwords, secrets, codes. Names that only
# describe tokens (token_type, token_family, refresh_tokens_revoked) do not end in "token" and are kept.
_SECRET_KEY_NAMES = re.compile(
    r"pass|secret|verifier|authori[sz]ation|cookie|assertion|credential|^code$|token$|token_hint$", re.I
)
_JWT_LIKE = re.compile(r"^[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*$")
# A JWT inside a longer text ("Bearer eyJ..."): its header always starts with the base64url of '{"'.
_EMBEDDED_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]{7,}\.[A-Za-z0-9_-]*")


def scrub(value: Any, key: str = "") -> Any:
    """A copy of `value` with secrets masked: values under secret-looking keys and anything shaped like a JWT."""
    if key and _SECRET_KEY_NAMES.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return REDACTED if _JWT_LIKE.match(value) else _EMBEDDED_JWT.sub(REDACTED, value[:1000])
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:1000]


# Events whose row may follow the response by one batch (audit/writer.py): the high-volume successes of the token
# endpoint (token.issued also covers refreshes and the cookie API's sign-in tokens) and of sign-in. No detector
# reads them back and no alert is deduplicated against them; failures, lockouts, alerts and administrative changes
# are written before the response. A successful sign-in's synchronous append (the chain head's row lock and one
# round trip) was a twentieth of its CPU outside the password hash.
ROUTINE_TYPES = frozenset({events.TOKEN_ISSUED, events.TOKEN_EXCHANGED, events.LOGIN_SUCCEEDED})

_EVENT_COLUMNS = ("seq", "created_at", "type", "outcome", "user_id", "username", "client_id", "ip", "user_agent",
                  "reason", "detail", "prev_hash", "hash")
_PG_LOCK_HEAD = "SELECT last_seq, last_hash, anchor_seq, anchor_hash FROM audit_chainhead WHERE id = 1 FOR UPDATE"
# One statement moves the head and appends the events (a data-modifying CTE), saving a round trip. One event goes
# as plain parameters, the cheapest for one row; a batch as one JSON array of rows, which the server unpacks: the
# statement's text and its 4 parameters stay the same whatever the batch's size, and one json.dumps costs a fraction
# of adapting every value. Built from the constant column list above, never from input.
_PG_APPEND_ONE = (
    "WITH moved AS (UPDATE audit_chainhead SET last_seq = %s, last_hash = %s, mac = %s WHERE id = 1) "  # noqa: S608
    f"INSERT INTO audit_event ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join(['%s::jsonb' if column == 'detail' else '%s' for column in _EVENT_COLUMNS])}) "
    "RETURNING seq, id"
)
_PG_COLUMN_TYPES = {"seq": "bigint", "created_at": "timestamptz", "user_id": "bigint", "ip": "inet", "detail": "jsonb"}
_PG_APPEND_MANY = (
    "WITH moved AS (UPDATE audit_chainhead SET last_seq = %s, last_hash = %s, mac = %s WHERE id = 1) "  # noqa: S608
    f"INSERT INTO audit_event ({', '.join(_EVENT_COLUMNS)}) SELECT {', '.join(_EVENT_COLUMNS)} "
    f"FROM jsonb_to_recordset(%s::jsonb) AS batch("
    f"{', '.join(column + ' ' + _PG_COLUMN_TYPES.get(column, 'text') for column in _EVENT_COLUMNS)}) "
    "RETURNING seq, id"
)


def _link(event: Event, last_seq: int, last_hash: str) -> None:
    # Stamped under the lock, so that time never runs backwards along the chain (pruning by age relies on it).
    event.created_at = timezone.now()
    event.seq = last_seq + 1
    event.prev_hash = last_hash
    event.hash = chain.event_hash(event)


def _link_all(batch: list[Event], last_seq: int, last_hash: str) -> None:
    for event in batch:
        _link(event, last_seq, last_hash)
        last_seq, last_hash = event.seq, event.hash


def _append_postgresql(batch: list[Event], connection, *, async_commit: bool) -> bool:
    """The token path's fast lane: lock, append and move the head in two round trips, for one event or a batch.
    False when there is no head row (the portable path then makes one)."""
    with connection.cursor() as cursor:
        if async_commit:
            cursor.execute(f"SET LOCAL synchronous_commit TO OFF; {_PG_LOCK_HEAD}")
            cursor.nextset()
        else:
            cursor.execute(_PG_LOCK_HEAD)
        head = cursor.fetchone()
        if head is None:
            return False
        last_seq, last_hash, anchor_seq, anchor_hash = head
        _link_all(batch, last_seq, last_hash)
        last = batch[-1]
        mac = chain.head_mac(last_seq=last.seq, last_hash=last.hash, anchor_seq=anchor_seq, anchor_hash=anchor_hash)
        if len(batch) == 1:
            values = [getattr(last, column) for column in _EVENT_COLUMNS]
            values[_EVENT_COLUMNS.index("detail")] = json.dumps(last.detail)
            cursor.execute(_PG_APPEND_ONE, [last.seq, last.hash, mac, *values])
        else:
            rows = [{column: getattr(event, column) for column in _EVENT_COLUMNS} for event in batch]
            for row in rows:
                row["created_at"] = row["created_at"].isoformat()  # exact to the microsecond, with its offset
            cursor.execute(_PG_APPEND_MANY, [last.seq, last.hash, mac, json.dumps(rows)])
        ids = dict(cursor.fetchall())
    for event in batch:
        event.pk = ids[event.seq]
        event._state.adding = False
        event._state.db = connection.alias
    return True


def _append(batch: list[Event], *, duplicates: QuerySet[Event] | None = None) -> bool:
    """Append the events to the chain in order, in one transaction: one head lock, one insert, one head move.
    False, writing nothing, when `duplicates` has a row under the chain lock. Raises what the database raises,
    having written nothing."""
    connection = transaction.get_connection()
    # The events' own transaction need not wait for the WAL flush: the chain-head lock is then held for
    # microseconds instead of a disk sync, which is what makes auditing every token cheap. Only a crash of
    # PostgreSQL itself (not of the IdP) can lose the last few hundred milliseconds of events, and the head moves
    # in the same transaction, so `audit verify` still passes; the JSON log line has them.
    async_commit = (not connection.in_atomic_block and connection.vendor == "postgresql"
                    and not settings.IDP_AUDIT_DURABLE_COMMIT)
    with transaction.atomic():
        if connection.vendor == "postgresql" and duplicates is None:
            if _append_postgresql(batch, connection, async_commit=async_commit):
                return True
        elif async_commit:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # The lock serialises every writer (BEGIN IMMEDIATE on SQLite), so two processes that both see a threshold
        # crossed cannot both raise the alert: the second finds the first's here. The migration creates the head;
        # a database flushed since (as tests that flush do) gets a fresh one. With events left and no head, the
        # new head's first seq collides with theirs and nothing is written.
        head, _ = ChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": chain.GENESIS_HASH, "anchor_hash": chain.GENESIS_HASH}
        )
        if duplicates is not None and duplicates.exists():
            return False
        _link_all(batch, head.last_seq, head.last_hash)
        Event.objects.bulk_create(batch)
        last = batch[-1]
        ChainHead.objects.filter(pk=1).update(
            last_seq=last.seq, last_hash=last.hash,
            mac=chain.head_mac(last_seq=last.seq, last_hash=last.hash, anchor_seq=head.anchor_seq,
                               anchor_hash=head.anchor_hash),
        )
    return True


# One per process: routine events wait in it for their batch. Stopped, and so written, at exit (audit/apps.py).
routine_writer = writer.BatchWriter(store=_append)


def events_flush() -> int:
    """Store every routine event this process has queued, now, from the calling thread (for tests and management
    commands). Returns how many are still waiting: 0 unless the database refused them, in which case they wait
    for a retry."""
    return routine_writer.flush()


def _queued(event: Event) -> bool:
    """Hand a routine success to the batched writer. False when it is to be written now: batching is off
    (IDP_AUDIT_BATCH_MS=0), the caller's transaction is open (the event is then written, and undone, with it, as
    before), or the queue is full (back-pressure: the caller pays for its own write rather than lose it)."""
    if event.type not in ROUTINE_TYPES or event.outcome != events.SUCCESS or settings.IDP_AUDIT_BATCH_MS <= 0:
        return False
    if transaction.get_connection().in_atomic_block:
        return False
    return routine_writer.submit(event)


def _log_line(event: Event, stored: bool, queued: bool) -> str:
    return json.dumps(
        {
            "time": event.created_at.isoformat(timespec="microseconds"),
            "event": event.type,
            "outcome": event.outcome,
            "user_id": event.user_id,
            "username": event.username,
            "client_id": event.client_id,
            "ip": event.ip,
            "user_agent": event.user_agent,
            "reason": event.reason,
            "detail": event.detail,
            "seq": event.seq,
            "stored": stored,
            "queued": queued,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _ship(event: Event, stored: bool, queued: bool = False) -> None:
    """Write the JSON line and count the event; neither may fail the caller. A queued event's line has no seq and
    says "queued": its row follows within a batch, or the writer logs an error that counts it as unstored."""
    try:
        logger.info(_log_line(event, stored, queued))
    except Exception:  # noqa: BLE001 - handlers report their own errors; this catches a broken filter or formatter
        failure_logger.exception("audit event %s could not be written to the log", event.type)
    try:
        metrics.event_observe(
            type=event.type, outcome=event.outcome, reason=event.reason, detail=event.detail, stored=stored or queued
        )
    except Exception:  # noqa: BLE001
        failure_logger.exception("audit event %s could not be counted", event.type)


def _commit(event: Event, *, duplicates: QuerySet[Event] | None = None) -> Event | None:
    """Store, log and count the event, then show it to the detectors. Never raises."""
    try:
        if not _append([event], duplicates=duplicates):
            return None  # the same alert was raised earlier in its window
        stored = True
    except Exception:  # noqa: BLE001 - a broken audit store must never turn the request into a 500
        failure_logger.exception("audit event %s could not be stored; it is only in the log", event.type)
        stored = False
        event.seq, event.prev_hash, event.hash = None, "", ""  # the chain position was rolled back with the row
    _ship(event, stored)
    # Only stored events: the detectors count rows, and a database that refused this one would refuse them too.
    if stored and detectors.watches(event.type):
        for alert in detectors.alerts_for(event):
            _alert_record(alert)
    return event if stored else None


def _alert_record(alert: detectors.Alert) -> Event | None:
    """Store one alert unless the same type and key was raised in its window. Never raises."""
    try:
        event = Event(
            created_at=timezone.now(),
            type=alert.type,
            outcome=events.ALERT,
            user_id=alert.user_id,
            username=alert.username[:150],
            client_id=alert.client_id[:100],
            ip=alert.ip,
            reason=alert.reason[:64],
            detail=scrub({**alert.detail, "alert_key": alert.key}),
        )
        duplicates = detectors.alert_duplicates(type=alert.type, key=alert.key, since=alert.window_start)
    except Exception:  # noqa: BLE001
        failure_logger.exception("audit alert %s could not be built", alert.type)
        return None
    stored = _commit(event, duplicates=duplicates)
    if stored is not None:
        # Once the row is committed: an alert rolled back with its caller's transaction must be raised again.
        transaction.on_commit(lambda: detectors.raised.remember(type=alert.type, key=alert.key,
                                                                at=event.created_at))
    return stored


def event_record(
    *,
    type: str,
    outcome: str,
    request=None,
    user=None,
    username: str = "",
    client_id: str = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> Event | None:
    """Record one event and write it as a JSON line. Never raises; returns the stored (or queued) event, or None.

    `user` defaults to the request's signed-in user. Call it outside the request's own transaction where one
    might roll back, so that the event of a failing request is kept. If the database refuses the event, the JSON
    line is still written (with `"stored": false`) and the failure is logged; the caller's request goes on.
    A stored failure event of a watched type is shown to the detectors, which may record `alert.*` events.
    A routine success (ROUTINE_TYPES) is queued for the batched writer instead, unless IDP_AUDIT_BATCH_MS is 0: its
    row (seq, hash and time of storing) follows the response by at most one batch.
    """
    try:
        if user is None and request is not None:
            request_user = getattr(request, "user", None)
            if request_user is not None and request_user.is_authenticated:
                user = request_user
        event = Event(
            created_at=timezone.now(),
            type=type,
            outcome=outcome,
            user=user if user is not None and user.pk is not None else None,
            username=(username or (user.get_username() if user is not None else ""))[:150],
            client_id=(client_id or "")[:100],
            ip=client_ip(request),
            user_agent=user_agent(request),
            reason=(reason or "")[:64],
            detail=scrub(detail or {}),
        )
    except Exception:  # noqa: BLE001 - a malformed call must not fail the request it describes
        failure_logger.exception("audit event %s could not be built", type)
        return None
    if _queued(event):
        _ship(event, stored=False, queued=True)
        return event
    return _commit(event)
