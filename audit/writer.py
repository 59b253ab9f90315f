"""The batched writer: routine events reach the chain from one background thread per process, many per transaction.

A request that records a routine event (audit/services.py ROUTINE_TYPES) only queues it; the thread appends a
batch when it holds IDP_AUDIT_BATCH_SIZE events or IDP_AUDIT_BATCH_MS after its oldest was queued, so that requests
no longer queue up behind the chain-head lock one event at a time. What may be lost: the events still queued when
a process dies without exiting (SIGKILL, a crash), at most IDP_AUDIT_BATCH_MS' worth in normal running, and those a
database outage outlasts (ATTEMPTS writes, about a quarter of a minute); their JSON log lines keep them all.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connections

from audit import metrics
from audit.models import Event

logger = logging.getLogger("audit")

QUEUE_LIMIT = 10_000  # events waiting per process; beyond it callers write their own (back-pressure, never loss)
ATTEMPTS = 5  # writes of one event before it is given up on
RETRY_SECONDS = 1.0  # the wait after a failed batch, doubled with each further failure of its oldest event
STOP_SECONDS = 10.0  # how long exit waits for the last batches

# Held only for the moment a forked child replaces the state it inherited, so a later fork all but never finds it
# held; the state's own locks may well have been, which is why a child never touches them.
_FORK_LOCK = threading.Lock()


@dataclass(eq=False)
class _Pending:
    event: Event
    queued_at: float  # time.monotonic()
    attempts: int = 0


@dataclass(eq=False)
class _Process:
    """One process's queue and thread. `wake` guards every field; `writing` lets one batch be written at a time,
    so that `flush` returns only after the batch the thread may have in flight."""

    pid: int = field(default_factory=os.getpid)
    wake: threading.Condition = field(default_factory=threading.Condition)
    writing: threading.Lock = field(default_factory=threading.Lock)
    pending: deque[_Pending] = field(default_factory=deque)
    retry_at: float = 0.0  # after a failed batch the thread writes nothing before this monotonic time
    thread: threading.Thread | None = None
    stopping: bool = False


class BatchWriter:
    """A per-process queue of events drained in batches by `store`, which appends a list of events to the chain in
    one transaction and raises, having written nothing, when it cannot."""

    def __init__(self, *, store: Callable[[list[Event]], object]) -> None:
        self._store = store
        self._process = _Process()

    def _state(self) -> _Process:
        state = self._process
        if state.pid == os.getpid():
            return state
        with _FORK_LOCK:
            # A forked child (a gunicorn worker): its parent writes the events it had queued, the parent's thread
            # did not come along, and its locks may have been held at the fork. Start afresh.
            if self._process.pid != os.getpid():
                self._process = _Process()
            return self._process

    def submit(self, event: Event) -> bool:
        """Queue the event for a coming batch, starting the thread if need be. False, queuing nothing, when the
        queue is full or no thread can start (the interpreter is exiting): the caller then writes it itself."""
        state = self._state()
        with state.wake:
            if len(state.pending) >= QUEUE_LIMIT:
                return False
            if state.thread is None:
                thread = threading.Thread(target=self._run, args=(state,), name="audit-writer", daemon=True)
                try:
                    thread.start()
                except RuntimeError:
                    return False
                state.thread = thread
            state.pending.append(_Pending(event, time.monotonic()))
            if len(state.pending) in (1, settings.IDP_AUDIT_BATCH_SIZE):
                state.wake.notify()  # the first starts the clock; a full batch is due at once
        return True

    def flush(self) -> int:
        """Write every queued event now, batch by batch, from the calling thread. Returns how many still wait: 0
        unless the database refused a batch, whose events then wait for a retry."""
        state = self._state()
        # Each round first waits for the batch the thread may have in flight, so even an empty queue is a wait.
        while self._write_batch(state, final=False) and state.pending:
            pass
        return len(state.pending)

    def stop(self) -> None:
        """Write what is queued and end the thread, which closes its database connection (at exit, and between
        tests). A later event starts a new thread."""
        state = self._state()
        with state.wake:
            thread = state.thread
            if thread is None:
                return
            state.stopping = True
            state.wake.notify()
        thread.join(STOP_SECONDS)
        if thread.is_alive():
            logger.error("audit writer: %d events were still waiting after %.0f s at exit; only their JSON log "
                         "lines keep them", len(state.pending), STOP_SECONDS)

    def _due_in(self, state: _Process) -> float | None:
        """Seconds until the next batch is due, or None while nothing waits."""
        if not state.pending:
            return None
        now = time.monotonic()
        if len(state.pending) >= settings.IDP_AUDIT_BATCH_SIZE:
            due = now
        else:
            due = state.pending[0].queued_at + settings.IDP_AUDIT_BATCH_MS / 1000
        return max(due, state.retry_at) - now

    def _run(self, state: _Process) -> None:
        try:
            while True:
                with state.wake:
                    while not state.stopping and ((delay := self._due_in(state)) is None or delay > 0):
                        state.wake.wait(delay)
                    stopping = state.stopping
                # A long-lived thread outside any request: drop a connection that broke or outlived its age.
                close_old_connections()
                if stopping:
                    while state.pending:
                        self._write_batch(state, final=True)
                    return
                self._write_batch(state, final=False)
        finally:
            connections.close_all()  # this thread's own connections: no idle one outlives it
            with state.wake:
                state.thread, state.stopping = None, False

    def _write_batch(self, state: _Process, *, final: bool) -> bool:
        """Store the oldest waiting events as one batch; True when they were stored (or none waited). A refused
        batch goes back to the front of the queue, but its events given up on after ATTEMPTS writes (or at
        once when `final`)."""
        with state.writing:
            with state.wake:
                size = min(settings.IDP_AUDIT_BATCH_SIZE, len(state.pending))
                batch = [state.pending.popleft() for _ in range(size)]
            if not batch:
                return True
            try:
                self._store([pending.event for pending in batch])
            except Exception:  # noqa: BLE001 - the database is down or refused the batch; requests must not notice
                self._refused(state, batch, final=final)
                return False
            with state.wake:
                state.retry_at = 0.0
            return True

    def _refused(self, state: _Process, batch: list[_Pending], *, final: bool) -> None:
        for pending in batch:
            pending.attempts += 1
        retry = [] if final else [pending for pending in batch if pending.attempts < ATTEMPTS]
        given_up = len(batch) - len(retry)
        logger.exception("audit writer: a batch of %d events could not be stored; %d will be retried, %d are given "
                         "up and only their JSON log lines keep them", len(batch), len(retry), given_up)
        metrics.UNSTORED.inc(given_up)
        with state.wake:
            state.pending.extendleft(reversed(retry))
            if retry:
                state.retry_at = time.monotonic() + RETRY_SECONDS * 2 ** (retry[0].attempts - 1)
