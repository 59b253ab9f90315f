"""The hash chain: each event's HMAC covers its own fields and the previous event's hash."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings

GENESIS_HASH = "0" * 64


def _chain_key() -> bytes:
    # Keyed, so that someone who can write to the database cannot recompute a valid chain after editing it.
    return hashlib.sha256(b"idp.audit.chain\x00" + settings.IDP_AUDIT_CHAIN_KEY.encode()).digest()


def canonical_fields(event) -> dict[str, Any]:
    """The fields an event's hash covers, in a form that survives a round trip through either database."""
    return {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "type": event.type,
        "outcome": event.outcome,
        "user_id": event.user_id,
        "username": event.username,
        "client_id": event.client_id,
        "ip": event.ip or "",
        "user_agent": event.user_agent,
        "reason": event.reason,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }


def event_hash(event) -> str:
    """The hex HMAC-SHA256 of the event's canonical fields, which include the previous event's hash."""
    message = json.dumps(canonical_fields(event), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(_chain_key(), message.encode(), hashlib.sha256).hexdigest()


def head_mac(*, last_seq: int, last_hash: str, anchor_seq: int, anchor_hash: str) -> str:
    """The hex HMAC-SHA256 that seals the chain head's position, so that it cannot be rewound without the key."""
    message = f"head\x00{last_seq}\x00{last_hash}\x00{anchor_seq}\x00{anchor_hash}".encode()
    return hmac.new(_chain_key(), message, hashlib.sha256).hexdigest()
