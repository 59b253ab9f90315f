"""`manage.py audit prune` removes old events as a prefix of the chain, re-anchors it, and records that it did."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit import events
from audit.models import ChainHead, Event
from audit.services import event_record


@pytest.fixture
def record_at(monkeypatch):
    """Record events as if at a given time (event_record stamps them with timezone.now())."""

    def record(when, count=1, **fields):
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: when)
        try:
            for _ in range(count):
                assert event_record(type=fields.get("type", events.LOGIN_SUCCEEDED), outcome=events.SUCCESS,
                                    username=fields.get("username", "alice")) is not None
        finally:
            monkeypatch.setattr(timezone, "now", real_now)

    return record


def run(*args) -> str:
    out = io.StringIO()
    call_command("audit", *args, stdout=out)
    return out.getvalue().strip()


def seqs() -> list[int]:
    return list(Event.objects.order_by("seq").values_list("seq", flat=True))


@pytest.mark.django_db
def test_prune_removes_old_events_reanchors_the_chain_and_verify_still_passes(record_at):
    now = timezone.now()
    record_at(now - timedelta(days=200), count=5)
    record_at(now - timedelta(days=10), count=3)

    output = run("prune", "--older-than", "180d")

    assert output.startswith("Pruned 5 audit events older than ")
    assert output.endswith("the chain now starts at #6.")
    assert seqs() == [6, 7, 8, 9]
    head = ChainHead.objects.get(pk=1)
    assert (head.anchor_seq, head.anchor_hash) == (6, Event.objects.get(seq=6).prev_hash)
    pruned = Event.objects.get(type=events.AUDIT_PRUNED)
    assert pruned.seq == 9 and pruned.outcome == events.SUCCESS
    assert pruned.detail["count"] == 5 and pruned.detail["anchor_seq"] == 6
    assert pruned.detail["cutoff"].startswith(str((now - timedelta(days=180)).date()))
    assert run("verify") == "audit chain intact: 4 events from #6 to #9"


@pytest.mark.django_db
def test_pruning_every_event_anchors_the_chain_after_the_last_one(record_at):
    record_at(timezone.now() - timedelta(days=400), count=5)
    last_hash = ChainHead.objects.get(pk=1).last_hash

    run("prune", "--older-than", "365d")

    assert seqs() == [6]
    pruned = Event.objects.get(seq=6)
    assert pruned.type == events.AUDIT_PRUNED and pruned.prev_hash == last_hash
    assert ChainHead.objects.get(pk=1).anchor_seq == 6
    assert run("verify") == "audit chain intact: 1 event from #6 to #6"


@pytest.mark.django_db
def test_prune_in_small_batches_removes_the_same_events(record_at):
    record_at(timezone.now() - timedelta(days=30), count=7)
    record_at(timezone.now(), count=2)

    assert run("prune", "--older-than", "7d", "--batch-size", "2").startswith("Pruned 7 audit events")

    assert seqs() == [8, 9, 10]
    assert run("verify") == "audit chain intact: 3 events from #8 to #10"


@pytest.mark.django_db
def test_an_old_event_numbered_after_a_newer_one_is_kept_so_the_chain_has_no_hole(record_at):
    # Writers stamp the time before they take the chain lock, so neighbours can be a little out of order.
    now = timezone.now()
    record_at(now - timedelta(days=3))
    record_at(now - timedelta(hours=1))
    record_at(now - timedelta(days=3))

    run("prune", "--older-than", "2d")

    assert seqs() == [2, 3, 4]
    assert run("verify") == "audit chain intact: 3 events from #2 to #4"


@pytest.mark.django_db
def test_pruning_when_nothing_is_old_enough_keeps_everything_and_still_records_the_run(record_at):
    record_at(timezone.now(), count=3)

    assert run("prune", "--older-than", "30d").startswith("Pruned 0 audit events")

    assert seqs() == [1, 2, 3, 4]
    assert Event.objects.get(seq=4).detail["count"] == 0
    assert run("verify") == "audit chain intact: 4 events from #1 to #4"


@pytest.mark.django_db
@pytest.mark.parametrize("age", ["180", "d", "180 days", "1.5d", "-5d", "0d", "10w", "99999d", ""])
def test_prune_refuses_an_age_it_cannot_read_and_deletes_nothing(record_at, age):
    record_at(timezone.now() - timedelta(days=500), count=2)

    with pytest.raises(CommandError, match="--older-than"):
        run("prune", "--older-than", age)

    assert seqs() == [1, 2]
    assert not Event.objects.filter(type=events.AUDIT_PRUNED).exists()


@pytest.mark.django_db
def test_prune_refuses_a_zero_batch_size(record_at):
    record_at(timezone.now() - timedelta(days=500), count=2)

    with pytest.raises(CommandError, match="batch-size"):
        run("prune", "--older-than", "180d", "--batch-size", "0")

    assert seqs() == [1, 2]


@pytest.mark.django_db
def test_prune_refuses_an_age_under_a_day_unless_forced(record_at):
    now = timezone.now()
    record_at(now - timedelta(hours=13), count=2)
    record_at(now - timedelta(minutes=5))

    with pytest.raises(CommandError, match="younger than 1 day without --force"):
        run("prune", "--older-than", "12h")
    assert seqs() == [1, 2, 3]
    assert not Event.objects.filter(type=events.AUDIT_PRUNED).exists()

    assert run("prune", "--older-than", "12h", "--force").startswith("Pruned 2 audit events")
    assert seqs() == [3, 4]


@pytest.mark.django_db
def test_tampering_after_a_prune_is_still_detected(record_at):
    now = timezone.now()
    record_at(now - timedelta(days=200), count=3)
    record_at(now, count=3)
    run("prune", "--older-than", "180d")
    table = connection.ops.quote_name(Event._meta.db_table)

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE seq = 4")
    with pytest.raises(CommandError, match=r"^audit chain broken: event #4 was deleted$"):
        run("verify")


@pytest.mark.django_db
def test_an_event_slipped_in_before_the_anchor_after_a_prune_is_detected(record_at):
    now = timezone.now()
    record_at(now - timedelta(days=200), count=3)
    record_at(now, count=2)
    run("prune", "--older-than", "180d")
    Event.objects.create(seq=2, created_at=now, type=events.LOGIN_SUCCEEDED, outcome=events.SUCCESS,
                         username="mallory", prev_hash="0" * 64, hash="f" * 64)

    with pytest.raises(CommandError, match=r"an event was inserted before #4 \(it claims #2\)"):
        run("verify")
    # A later prune neither removes the intruder nor starts the chain from it.
    run("prune", "--older-than", "180d")
    assert Event.objects.filter(seq=2, username="mallory").exists()
    with pytest.raises(CommandError, match=r"an event was inserted before #4 \(it claims #2\)"):
        run("verify")


def delete_seq(seq: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(Event._meta.db_table)} WHERE seq = %s", [seq])


@pytest.mark.django_db
def test_prune_refuses_to_move_the_anchor_past_an_event_deleted_just_after_the_cutoff(record_at):
    now = timezone.now()
    record_at(now - timedelta(days=200), count=3)
    record_at(now, count=3)
    delete_seq(4)  # the oldest event the prune would keep: the new anchor would have hidden its loss

    with pytest.raises(CommandError, match=r"1 of the events #1\.\.#4 are already missing"):
        run("prune", "--older-than", "180d")

    assert seqs() == [1, 2, 3, 5, 6]
    assert not Event.objects.filter(type=events.AUDIT_PRUNED).exists()
    with pytest.raises(CommandError, match=r"^audit chain broken: event #4 was deleted$"):
        run("verify")


@pytest.mark.django_db
def test_prune_refuses_to_hide_a_young_event_deleted_at_the_start_of_the_chain(record_at):
    record_at(timezone.now(), count=4)
    delete_seq(1)

    with pytest.raises(CommandError, match="already missing"):
        run("prune", "--older-than", "30d")

    assert ChainHead.objects.get(pk=1).anchor_seq == 1
    with pytest.raises(CommandError, match=r"^audit chain broken: event #1 was deleted$"):
        run("verify")


@pytest.mark.django_db
def test_a_forced_prune_across_missing_events_records_how_many_were_missing(record_at):
    now = timezone.now()
    record_at(now - timedelta(days=200), count=3)
    record_at(now, count=3)
    delete_seq(2)

    run("prune", "--older-than", "180d", "--force")

    assert seqs() == [4, 5, 6, 7]
    assert Event.objects.get(type=events.AUDIT_PRUNED).detail == {
        "count": 2, "cutoff": Event.objects.get(seq=7).detail["cutoff"], "anchor_seq": 4, "missing": 1,
    }
    assert run("verify") == "audit chain intact: 4 events from #4 to #7"
