"""Routine events leave the request path: a per-process writer appends them in batches, the chain stays one chain,
and failures, alerts and administrative changes are still written before the response."""

import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.db import OperationalError, connection, transaction
from django.test import Client as HttpClient

from audit import detectors, events, metrics, services, writer
from audit.models import Event
from audit.services import event_record, events_flush, routine_writer
from clients.services import client_create
from idp.keys import signing_key_ensure

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def batched(settings, transactional_db):
    """Batching on, as in production, but only a full batch of 100 or a flush writes unless a test says otherwise.
    The writer's thread commits from its own connection, so the tests commit too (transactional_db)."""
    settings.IDP_AUDIT_BATCH_MS = 60_000
    settings.IDP_AUDIT_BATCH_SIZE = 100
    yield settings
    routine_writer.stop()  # before the database is flushed: the thread drains and closes its connection


def issue(i: int = 0, client_id: str = "svc") -> Event | None:
    return event_record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, client_id=client_id,
                        detail={"grant_type": "client_credentials", "i": i})


def seqs() -> list[int]:
    return list(Event.objects.order_by("seq").values_list("seq", flat=True))


def verify() -> str:
    out = io.StringIO()
    call_command("audit", "verify", "--chunk-size", "7", stdout=out)
    return out.getvalue().strip()


def _holds(condition) -> bool:
    try:
        return condition()
    except OperationalError as error:
        # SQLite's shared in-memory test database answers "table is locked" rather than wait while the writer's
        # batch is open (a database file in WAL mode, as deployed, lets readers through): ask again.
        if connection.vendor == "sqlite" and "locked" in str(error):
            return False
        raise


def wait_until(condition, seconds: float = 20.0) -> None:
    """Poll until `condition()` holds; the bound only stops a broken writer from hanging the suite."""
    deadline = time.monotonic() + seconds
    while not _holds(condition):
        assert time.monotonic() < deadline, "the writer did not get there"
        time.sleep(0.02)


@pytest.fixture
def service_client(batched):
    signing_key_ensure()
    issued = client_create(name="orders", client_type="confidential", grant_types=["client-credentials"],
                           allowed_scopes=["orders:read"], audiences=["https://orders.example.com"])
    credentials = base64.b64encode(f"{issued.client.client_id}:{issued.client_secret}".encode()).decode()
    return issued.client, f"Basic {credentials}"


# --- What is routine. -----------------------------------------------------------------------------------------


def test_only_token_and_sign_in_successes_are_routine_and_no_detector_reads_them():
    assert services.ROUTINE_TYPES == {events.TOKEN_ISSUED, events.TOKEN_EXCHANGED, events.LOGIN_SUCCEEDED}
    assert not any(detectors.watches(type) for type in services.ROUTINE_TYPES)


def test_the_test_suite_writes_every_event_before_its_response_unless_a_test_batches(settings, db):
    assert settings.IDP_AUDIT_BATCH_MS == 0
    event = issue()
    assert event.seq == 1 and Event.objects.get().type == events.TOKEN_ISSUED


# --- Queued, then written. -------------------------------------------------------------------------------------


def test_a_routine_event_waits_in_the_queue_until_the_flush_then_joins_the_chain(batched):
    event = issue()

    assert event is not None and event.seq is None  # queued: numbered when its batch is appended
    assert Event.objects.count() == 0

    assert events_flush() == 0
    stored = Event.objects.get()
    assert (stored.type, stored.seq, stored.client_id, stored.detail["i"]) == (events.TOKEN_ISSUED, 1, "svc", 0)
    assert verify() == "audit chain intact: 1 event from #1 to #1"


def test_a_queued_event_is_shipped_at_once_with_no_seq_and_not_counted_as_unstored(batched, caplog):
    unstored_before = metrics.UNSTORED._value.get()
    issued_before = metrics.EVENTS.labels(type=events.TOKEN_ISSUED, outcome=events.SUCCESS)._value.get()

    issue()

    [line] = [record.getMessage() for record in caplog.records if record.name == "audit.events"]
    shipped = json.loads(line)
    assert (shipped["seq"], shipped["stored"], shipped["queued"]) == (None, False, True)
    assert metrics.EVENTS.labels(type=events.TOKEN_ISSUED, outcome=events.SUCCESS)._value.get() == issued_before + 1
    assert metrics.UNSTORED._value.get() == unstored_before


def test_a_full_batch_is_written_by_the_thread_without_a_flush(batched):
    batched.IDP_AUDIT_BATCH_SIZE = 3
    for i in range(3):
        issue(i)

    wait_until(lambda: Event.objects.count() == 3)
    assert seqs() == [1, 2, 3]
    assert [event.detail["i"] for event in Event.objects.order_by("seq")] == [0, 1, 2]  # in the order recorded


def test_a_batch_is_written_by_the_thread_once_its_time_is_up(batched):
    batched.IDP_AUDIT_BATCH_MS = 20
    issue()

    wait_until(lambda: Event.objects.count() == 1)
    assert verify() == "audit chain intact: 1 event from #1 to #1"


def test_a_batch_costs_the_same_statements_as_one_event_whatever_its_size(batched, django_assert_num_queries):
    event_record(type=events.LOGOUT, outcome=events.SUCCESS, username="alice")  # a head (tests flush it away)
    for i in range(50):
        issue(i)
    # In its own transaction. PostgreSQL: the head lock (after SET LOCAL), then one statement that inserts every
    # row and moves the head. SQLite, the portable path: read the head, one multi-row INSERT, move the head.
    expected = ["BEGIN", "SET", "WITH", "COMMIT"] if connection.vendor == "postgresql" else [
        "BEGIN", "SELECT", "INSERT", "UPDATE", "COMMIT"]
    with django_assert_num_queries(len(expected)) as captured:
        assert events_flush() == 0
    assert [query["sql"].split()[0] for query in captured.captured_queries] == expected

    assert seqs() == list(range(1, 52))
    assert verify() == "audit chain intact: 51 events from #1 to #51"


def test_the_chain_verifies_after_batches_interleaved_with_synchronous_events(batched):
    for round_number in range(3):
        for i in range(4):
            issue(i, client_id=f"r{round_number}")
        event_record(type=events.LOGOUT, outcome=events.SUCCESS, username=f"u{round_number}")  # written now
        assert Event.objects.filter(type=events.LOGOUT).count() == round_number + 1
        if round_number != 1:
            events_flush()  # the middle round's events wait and join the next round's batch

    events_flush()
    assert seqs() == list(range(1, 16))
    assert verify() == "audit chain intact: 15 events from #1 to #15"


def test_a_routine_event_inside_a_callers_transaction_is_written_with_it(batched):
    with transaction.atomic():
        event = issue()
        assert event.seq == 1
    assert Event.objects.count() == 1


# --- Failure, retry, back-pressure. ----------------------------------------------------------------------------


def _refuse_writes(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OperationalError("the database is down")

    monkeypatch.setattr(services, "_link", refuse)  # inside every store's transaction, on either database


def test_a_refused_batch_is_logged_and_retried_on_the_next_flush(batched, monkeypatch, caplog):
    issue(0)
    issue(1)
    _refuse_writes(monkeypatch)

    assert events_flush() == 2  # both still waiting
    assert Event.objects.count() == 0
    assert "a batch of 2 events could not be stored; 2 will be retried, 0 are given up" in caplog.text

    monkeypatch.undo()
    assert events_flush() == 0
    assert [event.detail["i"] for event in Event.objects.order_by("seq")] == [0, 1]
    assert verify() == "audit chain intact: 2 events from #1 to #2"


def test_events_are_given_up_after_their_last_attempt_and_counted_as_unstored(batched, monkeypatch, caplog):
    issue()
    _refuse_writes(monkeypatch)
    unstored_before = metrics.UNSTORED._value.get()

    for _attempt in range(writer.ATTEMPTS - 1):
        assert events_flush() == 1
    assert events_flush() == 0

    assert "a batch of 1 events could not be stored; 0 will be retried, 1 are given up" in caplog.text
    assert metrics.UNSTORED._value.get() == unstored_before + 1
    assert Event.objects.count() == 0


def test_a_full_queue_makes_the_caller_write_its_own_event(batched, monkeypatch):
    monkeypatch.setattr(writer, "QUEUE_LIMIT", 2)
    first, second, third = issue(0), issue(1), issue(2)

    assert (first.seq, second.seq, third.seq) == (None, None, 1)  # the third paid for its own write
    assert [event.detail["i"] for event in Event.objects.all()] == [2]

    events_flush()
    assert seqs() == [1, 2, 3]
    assert verify() == "audit chain intact: 3 events from #1 to #3"


def test_a_forked_child_starts_with_an_empty_queue_and_a_thread_of_its_own(batched):
    issue()
    parent = routine_writer._state()
    assert parent.thread is not None

    pid = os.fork()
    if pid == 0:  # the child touches no database and leaves without running the parent's exit handlers
        inherited = routine_writer._state()
        fresh = inherited is not parent and not inherited.pending and inherited.thread is None
        routine_writer.submit(Event(type=events.TOKEN_ISSUED, outcome=events.SUCCESS))
        own = len(inherited.pending) == 1 and inherited.thread is not None and inherited.thread.is_alive()
        os._exit(0 if fresh and own else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert routine_writer._state() is parent and len(parent.pending) == 1  # the parent's event is the parent's
    assert events_flush() == 0 and Event.objects.count() == 1


# --- Through the token endpoint. --------------------------------------------------------------------------------


def test_a_token_success_waits_for_its_batch_while_a_token_failure_is_written_before_the_response(service_client):
    client, authorization = service_client
    http = HttpClient()

    ok = http.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=authorization)
    refused = http.post("/o/token/", {"grant_type": "client_credentials"},
                        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{client.client_id}:wrong".encode()).decode())

    assert (ok.status_code, refused.status_code) == (200, 401)
    assert list(Event.objects.filter(type__startswith="token.").values_list("type", "reason")) == [
        (events.TOKEN_FAILED, "invalid_client")]
    events_flush()
    issued = Event.objects.get(type=events.TOKEN_ISSUED)
    assert issued.seq > Event.objects.get(type=events.TOKEN_FAILED).seq  # numbered when its batch was appended
    assert issued.client_id == client.client_id
    assert verify().startswith("audit chain intact")


def test_a_live_token_request_over_http_reaches_the_table_and_the_chain_verifies(live_server, batched,
                                                                                 service_client):
    client, authorization = service_client
    batched.IDP_AUDIT_BATCH_MS = 20  # the writer thread, not a flush, writes it

    response = requests.post(f"{live_server.url}/o/token/", data={"grant_type": "client_credentials"},
                             headers={"Authorization": authorization}, timeout=30)

    assert response.status_code == 200
    wait_until(lambda: Event.objects.filter(type=events.TOKEN_ISSUED).exists())
    assert Event.objects.get(type=events.TOKEN_ISSUED).client_id == client.client_id
    assert verify().startswith("audit chain intact")


# --- Many writers on PostgreSQL. --------------------------------------------------------------------------------


def _database_url() -> str:
    values = connection.settings_dict
    password = f":{values['PASSWORD']}" if values.get("PASSWORD") else ""
    return (f"postgres://{values['USER']}{password}@{values['HOST'] or '127.0.0.1'}:{values['PORT'] or 5432}"
            f"/{values['NAME']}")


_PROCESS_SCRIPT = """
import sys
import django
django.setup()
from audit import events
from audit.services import event_record
for i in range(int(sys.argv[2])):
    event_record(type=events.TOKEN_ISSUED, outcome=events.SUCCESS, client_id=sys.argv[1], detail={"i": i})
    if i % 10 == 0:
        event_record(type=events.LOGOUT, outcome=events.SUCCESS, username=sys.argv[1])
# No flush: the batches still queued are written at exit.
"""


def test_batched_writers_in_threads_and_processes_on_postgresql_leave_one_verifying_chain(batched):
    if connection.vendor != "postgresql":
        pytest.skip("other processes cannot open the in-memory SQLite test database")
    batched.IDP_AUDIT_BATCH_SIZE, batched.IDP_AUDIT_BATCH_MS = 7, 5
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "idp.settings", "DATABASE_URL": _database_url(),
           "IDP_AUDIT_CHAIN_KEY": batched.IDP_AUDIT_CHAIN_KEY, "IDP_AUDIT_BATCH_SIZE": "7",
           "IDP_AUDIT_BATCH_MS": "5"}
    per_process, per_thread, threads_count = 60, 40, 4
    processes = [
        subprocess.Popen([sys.executable, "-c", _PROCESS_SCRIPT, f"proc{n}", str(per_process)], env=env, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    start = threading.Barrier(threads_count)

    def thread_writer(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                issue(i, client_id=f"thread{n}")
                if i % 10 == 0:
                    event_record(type=events.LOGOUT, outcome=events.SUCCESS, username=f"thread{n}")
        finally:
            connection.close()

    threads = [threading.Thread(target=thread_writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
    events_flush()

    total = 2 * (per_process + per_process // 10) + threads_count * (per_thread + per_thread // 10)
    assert seqs() == list(range(1, total + 1))
    for n in range(2):
        assert sorted(Event.objects.filter(client_id=f"proc{n}").values_list("detail__i", flat=True)) == list(
            range(per_process))
    assert verify() == f"audit chain intact: {total} events from #1 to #{total}"
