"""Two requests racing for one row (PostgreSQL): both pass validation, then queue up behind a lock held on the row
until both wait, as truly simultaneous requests do; the lock is then released and their answers returned."""

import threading
import time
from collections.abc import Callable

from django.db import connections
from django.db.models import Model


def _waiting_for_locks() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = "
                       "current_database()")
        return cursor.fetchone()[0]


def race_behind_row_lock(row: Model, request: Callable[[], object], *, count: int = 2) -> list:
    """Run `request` `count` times at once, each in its own thread, held back by a lock on `row`; their answers."""
    answers: list = []

    def send() -> None:
        try:
            answers.append(request())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(count)]
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f"SELECT id FROM {type(row)._meta.db_table} WHERE id = %s FOR UPDATE",  # noqa: S608
                           [row.pk])
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while _waiting_for_locks() < count and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _waiting_for_locks() == count
            cursor.execute("COMMIT")
    finally:
        holder.close()
    for thread in threads:
        thread.join(timeout=30)
    return answers
