"""`manage.py audit verify` finds the first modified, inserted or deleted event, and concurrent writers keep the
chain whole."""

import io
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit import events
from audit.chain import GENESIS_HASH, head_mac
from audit.integrity import chain_verify
from audit.models import ChainHead, Event
from audit.services import event_record


def record(count: int, start: int = 1) -> None:
    for i in range(start, start + count):
        # Successes, so that no detector adds alerts of its own to the chain under test.
        stored = event_record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, client_id=f"client{i}",
                              reason="", detail={"i": i})
        assert stored is not None


def raw(sql: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("TABLE", connection.ops.quote_name(Event._meta.db_table)), params)
        return cursor.rowcount


def forge(seq: int, prev_hash: str) -> Event:
    # The ORM may add rows; only event_record knows the chain key, so a forger's hash cannot be right.
    return Event.objects.create(seq=seq, created_at=timezone.now(), type=events.LOGIN_SUCCEEDED,
                                outcome=events.SUCCESS, username="mallory", prev_hash=prev_hash, hash="f" * 64)


def move_head(**fields) -> None:
    """Change the chain head as only someone holding the chain key could (it reseals it), to test the walk."""
    ChainHead.objects.filter(pk=1).update(**fields)
    head = ChainHead.objects.get(pk=1)
    ChainHead.objects.filter(pk=1).update(mac=head_mac(last_seq=head.last_seq, last_hash=head.last_hash,
                                                       anchor_seq=head.anchor_seq, anchor_hash=head.anchor_hash))


def verify() -> str:
    out = io.StringIO()
    call_command("audit", "verify", "--chunk-size", "3", stdout=out)
    return out.getvalue().strip()


def verify_error() -> str:
    with pytest.raises(CommandError) as caught:
        verify()
    return str(caught.value)


@pytest.mark.django_db
def test_verify_reports_an_intact_chain_with_its_count_and_range():
    record(7)
    assert verify() == "audit chain intact: 7 events from #1 to #7"


@pytest.mark.django_db
def test_verify_passes_on_an_empty_chain():
    assert verify() == "audit chain intact: 0 events (the next event will be #1)"


@pytest.mark.django_db
def test_an_edited_event_is_reported_as_modified_by_its_number():
    record(7)
    assert raw("UPDATE TABLE SET reason = %s WHERE seq = 4", ["unknown_user"]) == 1

    assert verify_error() == "audit chain broken: event #4 was modified"


@pytest.mark.django_db
def test_an_edited_event_with_a_recomputed_unkeyed_hash_is_still_reported_as_modified():
    record(5)
    raw("UPDATE TABLE SET username = %s, hash = %s WHERE seq = 2", ["root", "0" * 64])

    assert verify_error() == "audit chain broken: event #2 was modified"


@pytest.mark.django_db
def test_an_event_inserted_in_the_middle_is_reported_even_when_later_events_are_renumbered():
    record(6)
    for seq in range(6, 2, -1):  # make room at #3, highest first so the unique index never clashes
        raw("UPDATE TABLE SET seq = seq + 1 WHERE seq = %s", [seq])
    forge(3, prev_hash=Event.objects.get(seq=2).hash)
    move_head(last_seq=7)  # even a forger who could reseal the head is caught by the links

    assert verify_error() == "audit chain broken: an event was inserted before #3"


@pytest.mark.django_db
def test_an_event_appended_without_the_chain_head_is_reported_as_inserted_after_the_end():
    record(4)
    forge(5, prev_hash=Event.objects.get(seq=4).hash)

    assert verify_error() == "audit chain broken: an event was inserted after #4, the end of the chain"


@pytest.mark.django_db
def test_a_deleted_event_in_the_middle_is_reported_by_its_number():
    record(7)
    assert raw("DELETE FROM TABLE WHERE seq = 4") == 1

    assert verify_error() == "audit chain broken: event #4 was deleted"


@pytest.mark.django_db
def test_several_deleted_events_are_reported_as_a_range():
    record(9)
    assert raw("DELETE FROM TABLE WHERE seq BETWEEN 3 AND 6") == 4

    assert verify_error() == "audit chain broken: events #3..#6 were deleted"


@pytest.mark.django_db
def test_events_deleted_at_the_end_are_reported_against_the_chain_head():
    record(7)
    assert raw("DELETE FROM TABLE WHERE seq >= 6") == 2

    assert verify_error() == "audit chain broken: events #6..#7 were deleted at the end of the chain"


@pytest.mark.django_db
def test_the_first_event_deleted_is_reported_as_a_gap_at_the_start():
    record(4)
    raw("DELETE FROM TABLE WHERE seq = 1")

    assert verify_error() == "audit chain broken: event #1 was deleted"


@pytest.mark.django_db
def test_the_first_of_several_problems_is_the_one_reported():
    record(8)
    raw("UPDATE TABLE SET reason = %s WHERE seq = 6", ["x"])
    raw("DELETE FROM TABLE WHERE seq = 3")

    assert verify_error() == "audit chain broken: event #3 was deleted"


@pytest.mark.django_db
def test_a_replaced_anchor_is_reported_as_a_broken_link():
    record(3)
    move_head(anchor_hash="a" * 64)

    assert verify_error() == "audit chain broken: event #1 does not link to the chain's anchor"


@pytest.mark.django_db
def test_a_chain_head_pointing_past_the_last_hash_is_reported():
    record(3)
    move_head(last_hash=GENESIS_HASH)

    assert verify_error() == "audit chain broken: the last event #3 does not match the chain head"


@pytest.mark.django_db
def test_verify_reads_in_bounded_chunks(django_assert_max_num_queries):
    record(10)
    # 4 pages of 3 rows (the last one short) plus the head twice and the highest seq.
    with django_assert_max_num_queries(7):
        report = chain_verify(chunk_size=3)
    assert report.intact and report.count == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_postgresql_leave_a_contiguous_verifiable_chain():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks; SQLite serialises every writer on its database lock")
    threads_count, per_thread = 6, 25
    failures = []
    start = threading.Barrier(threads_count)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                if event_record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, client_id=f"c{n}",
                                detail={"i": i}) is None:
                    failures.append((n, i))
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = threads_count * per_thread
    assert failures == []
    assert list(Event.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
    assert verify() == f"audit chain intact: {total} events from #1 to #{total}"


@pytest.mark.django_db
def test_rewinding_the_chain_head_to_hide_the_newest_events_is_reported_without_the_key():
    record(5)
    last_kept = Event.objects.get(seq=3)
    raw("DELETE FROM TABLE WHERE seq > %s", [3])
    ChainHead.objects.filter(pk=1).update(last_seq=3, last_hash=last_kept.hash)  # no key: the seal stays old

    assert verify_error() == (
        "audit chain broken: the chain head was altered: its seal does not match (events may have been removed)")


@pytest.mark.django_db
def test_moving_the_anchor_to_hide_the_oldest_events_is_reported_without_the_key():
    record(5)
    third = Event.objects.get(seq=3)
    raw("DELETE FROM TABLE WHERE seq < %s", [3])
    ChainHead.objects.filter(pk=1).update(anchor_seq=3, anchor_hash=third.prev_hash)

    assert "the chain head was altered" in verify_error()
