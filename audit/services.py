"""The one way to record a security event: stored in the hash chain and written as a JSON log line."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import chain
from audit.models import ChainHead, Event
from audit.request_meta import client_ip, user_agent

logger = logging.getLogger("audit.events")
failure_logger = logging.getLogger("audit")

REDACTED = "[redacted]"
_SECRET_KEY_NAMES = re.compile(r"pass|secret|token|verifier|authori[sz]ation|cookie|assertion|credential|^code$", re.I)
_HARMLESS_KEY_NAMES = {"token_type", "token_type_hint", "token_family", "subject_token_type", "requested_token_type"}
_JWT_LIKE = re.compile(r"^[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*$")


def scrub(value: Any, key: str = "") -> Any:
    """A copy of `value` with secrets masked: values under secret-looking keys and anything shaped like a JWT."""
    if key and key not in _HARMLESS_KEY_NAMES and _SECRET_KEY_NAMES.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return REDACTED if _JWT_LIKE.match(value) else value[:1000]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:1000]


def _store(event: Event) -> Event:
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().get(pk=1)
        event.seq = head.last_seq + 1
        event.prev_hash = head.last_hash
        event.hash = chain.event_hash(event)
        event.save(force_insert=True)
        ChainHead.objects.filter(pk=1).update(last_seq=event.seq, last_hash=event.hash)
    return event


def _log_line(event: Event, stored: bool) -> str:
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
        },
        sort_keys=True,
        separators=(",", ":"),
    )


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
    """Record one event and write it as a JSON line. Never raises; returns the stored event, or None.

    `user` defaults to the request's signed-in user. Call it outside the request's own transaction where one
    might roll back, so that the event of a failing request is kept. If the database refuses the event, the JSON
    line is still written (with `"stored": false`) and the failure is logged; the caller's request goes on.
    """
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
    stored = False
    try:
        _store(event)
        stored = True
    except Exception:  # noqa: BLE001 - a broken audit store must never turn the request into a 500
        failure_logger.exception("audit event %s could not be stored; it is only in the log", type)
    # `scrub` leaves only JSON types, and logging handlers report their own errors instead of raising.
    logger.info(_log_line(event, stored))
    return event if stored else None
