"""Integrity and retention of the event chain: verify every link, and prune old events without breaking it."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from audit import chain, events
from audit.models import ChainHead, Event
from audit.services import event_record

VERIFY_CHUNK_SIZE = 2000
PRUNE_BATCH_SIZE = 10_000
# Pruning anything younger needs `force`: a slip such as `--older-than 180m` for `180d` would erase the log.
PRUNE_MINIMUM_AGE = timedelta(days=1)


@dataclass(frozen=True)
class ChainReport:
    """What `chain_verify` found: `problem` is empty when the chain is intact, else it names the first break."""

    count: int
    first_seq: int
    last_seq: int
    problem: str = ""

    @property
    def intact(self) -> bool:
        return not self.problem

    def summary(self) -> str:
        if self.problem:
            return f"audit chain broken: {self.problem}"
        if not self.count:
            return f"audit chain intact: 0 events (the next event will be #{self.first_seq})"
        plural = "event" if self.count == 1 else "events"
        return f"audit chain intact: {self.count} {plural} from #{self.first_seq} to #{self.last_seq}"


@dataclass(frozen=True)
class PruneResult:
    """What `events_prune` removed, the cutoff it used, and where the chain now starts."""

    count: int
    cutoff: datetime
    anchor_seq: int


def _events_up_to(last_seq: int, chunk_size: int) -> Iterator[Event]:
    # Keyset pages over the unique seq index: bounded memory, and no long-lived cursor holding a snapshot.
    after = None
    while True:
        page = Event.objects.filter(seq__lte=last_seq).order_by("seq")
        if after is not None:
            page = page.filter(seq__gt=after)
        rows = list(page[:chunk_size])
        yield from rows
        if len(rows) < chunk_size:
            return
        after = rows[-1].seq


def _deleted(first: int, last: int, where: str = "") -> str:
    span = f"event #{first} was" if first == last else f"events #{first}..#{last} were"
    return f"{span} deleted{where}"


def _head_sealed(head: ChainHead) -> bool:
    # Only a head no event was ever written through may be unsealed: the migration creates it that way.
    pristine = (head.last_seq, head.anchor_seq, head.last_hash, head.anchor_hash) == (
        0, 1, chain.GENESIS_HASH, chain.GENESIS_HASH)
    if pristine and not head.mac:
        return True
    expected = chain.head_mac(last_seq=head.last_seq, last_hash=head.last_hash, anchor_seq=head.anchor_seq,
                              anchor_hash=head.anchor_hash)
    return hmac.compare_digest(head.mac, expected)


def _walk(head: ChainHead, chunk_size: int) -> ChainReport:
    expected_seq = head.anchor_seq
    expected_prev = head.anchor_hash
    count = 0

    def broken(problem: str) -> ChainReport:
        return ChainReport(count=count, first_seq=head.anchor_seq, last_seq=expected_seq - 1, problem=problem)

    if not _head_sealed(head):
        # Rewound to hide the newest events, or re-anchored to hide the oldest, by someone without the chain key.
        return broken("the chain head was altered: its seal does not match (events may have been removed)")

    rows = _events_up_to(head.last_seq, chunk_size)
    event = next(rows, None)
    while event is not None:
        following = next(rows, None)
        if event.seq < expected_seq:
            # Below the anchor, or a number already seen: nothing legitimate can live there.
            return broken(f"an event was inserted before #{expected_seq} (it claims #{event.seq})")
        if event.seq > expected_seq:
            return broken(_deleted(expected_seq, event.seq - 1))
        if chain.event_hash(event) != event.hash:
            # A foreign row pushed the genuine event one place on: that event still links to our predecessor.
            if following is not None and following.prev_hash == expected_prev:
                return broken(f"an event was inserted before #{expected_seq}")
            return broken(f"event #{expected_seq} was modified")
        if event.prev_hash != expected_prev:
            # The row is genuine but does not follow what came before: the anchor or its predecessor was replaced.
            before = "the chain's anchor" if expected_seq == head.anchor_seq else f"#{expected_seq - 1}"
            return broken(f"event #{expected_seq} does not link to {before}")
        count += 1
        expected_seq += 1
        expected_prev = event.hash
        event = following
    if expected_seq <= head.last_seq:
        return broken(_deleted(expected_seq, head.last_seq, " at the end of the chain"))
    if expected_prev != head.last_hash:
        return broken(f"the last event #{head.last_seq} does not match the chain head")
    return ChainReport(count=count, first_seq=head.anchor_seq, last_seq=head.last_seq)


def chain_verify(*, chunk_size: int = VERIFY_CHUNK_SIZE) -> ChainReport:
    """Recompute every event's keyed hash and link from the anchor to the head; report the first break found.

    Writers may go on meanwhile: the walk stops at the head it read first, and an event and the head that counts
    it commit together. Rows numbered past the head were written behind the chain's back. A prune that commits
    during the walk moves the anchor, so a break is confirmed by walking again before it is reported.
    """
    for _attempt in range(3):
        head = ChainHead.objects.get(pk=1)
        report = _walk(head, chunk_size)
        if report.intact:
            # Read the highest row before the head: the head only grows, so a row beyond it is a forgery.
            highest = Event.objects.aggregate(highest=Max("seq"))["highest"]
            current = ChainHead.objects.get(pk=1)
            if highest is not None and highest > current.last_seq:
                return ChainReport(count=report.count, first_seq=report.first_seq, last_seq=report.last_seq,
                                   problem=f"an event was inserted after #{current.last_seq}, the end of the chain")
            return report
        if ChainHead.objects.filter(pk=1).values_list("anchor_seq", flat=True).get() == head.anchor_seq:
            return report
    return report


def _delete_range(first: int, stop: int, batch_size: int) -> int:
    table = connection.ops.quote_name(Event._meta.db_table)
    column = connection.ops.quote_name("seq")
    # The one sanctioned way to delete events: the ORM refuses (audit.models.EventQuerySet).
    sql = (
        f"DELETE FROM {table} WHERE {column} IN "  # noqa: S608 - quoted identifiers only; values are parameters
        f"(SELECT {column} FROM {table} WHERE {column} >= %s AND {column} < %s ORDER BY {column} LIMIT %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [first, stop, batch_size])
        return cursor.rowcount


def _reanchor(head: ChainHead, start: int) -> int:
    # The chain now starts at the first event left from the old anchor on. Rows below the old anchor are not the
    # prune's to remove or to start from: they were slipped in, and `verify` goes on reporting them.
    first = (
        Event.objects.filter(seq__gte=start, seq__lte=head.last_seq).order_by("seq").values_list("seq", "prev_hash")
    ).first()
    if first is None:
        # Nothing left: the next event will be last_seq + 1 and will link to the last hash.
        anchor_seq, anchor_hash = head.last_seq + 1, head.last_hash
    else:
        anchor_seq, anchor_hash = first
    ChainHead.objects.filter(pk=1).update(
        anchor_seq=anchor_seq, anchor_hash=anchor_hash,
        mac=chain.head_mac(last_seq=head.last_seq, last_hash=head.last_hash, anchor_seq=anchor_seq,
                           anchor_hash=anchor_hash),
    )
    return anchor_seq


def events_prune(
    *, older_than: timedelta, force: bool = False, batch_size: int = PRUNE_BATCH_SIZE, now: datetime | None = None
) -> PruneResult:
    """Delete the events older than `older_than`, re-anchor the chain at the first one kept, record `audit.pruned`.

    Events go as a prefix of the chain, batch by batch, each batch in its own transaction holding the chain lock
    and moving the anchor with it, so the chain verifies after every commit and writers wait one batch at most.
    Refuses (ValidationError), unless `force` is set, an age under one day, and a prefix with events already
    missing: moving the anchor past a hole would hide it from `verify`.
    """
    if older_than <= timedelta(0):
        raise ValidationError("The age must be positive.")
    if older_than < PRUNE_MINIMUM_AGE and not force:
        raise ValidationError("Refusing to prune events younger than 1 day without --force.")
    if batch_size < 1:
        raise ValidationError("The batch size must be at least 1.")
    cutoff = (now or timezone.now()) - older_than
    # Every event numbered up to the head read here has committed. Writers take their time before they take the
    # chain lock, so times are only nearly in seq order: the prefix ends before the first event at or after the
    # cutoff, and an older event numbered after a newer one is kept rather than cut out of the middle.
    start, last_seq = ChainHead.objects.values_list("anchor_seq", "last_seq").get(pk=1)
    first_kept = Event.objects.filter(
        seq__gte=start, seq__lte=last_seq, created_at__gte=cutoff
    ).aggregate(first=Min("seq"))["first"]
    keep_from = first_kept if first_kept is not None else last_seq + 1
    missing = (keep_from - start) - Event.objects.filter(seq__gte=start, seq__lt=keep_from).count()
    if missing and not force:
        raise ValidationError(
            f"Refusing to prune: {missing} of the events #{start}..#{keep_from - 1} are already missing, and pruning "
            "would hide that. Run `manage.py audit verify`, then prune with --force once it is understood."
        )
    count = 0
    while True:
        with transaction.atomic():
            head = ChainHead.objects.select_for_update().get(pk=1)
            removed = _delete_range(start, keep_from, batch_size)
            anchor_seq = _reanchor(head, start)
        count += removed
        if removed < batch_size:
            break
    detail = {"count": count, "cutoff": cutoff.isoformat(timespec="seconds"), "anchor_seq": anchor_seq}
    if missing:
        detail["missing"] = missing
    event_record(type=events.AUDIT_PRUNED, outcome=events.SUCCESS, reason="retention", detail=detail)
    return PruneResult(count=count, cutoff=cutoff, anchor_seq=anchor_seq)
