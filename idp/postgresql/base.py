"""Django's PostgreSQL backend, with a health check that needs no round trip to the server.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before the first query of every request, and its
PostgreSQL check is a `SELECT 1`: a whole round trip, paid by every token and introspection request. This one asks
the kernel instead. An idle connection that the server closed (a restart, a failover, `pg_terminate_backend`, an
idle timeout) has its termination notice or the end of the stream waiting on the socket; an idle connection the
server has nothing to say to has nothing waiting. So a connection is reused only if it is idle and nothing at all
is waiting to be read; anything else (including a message that would have been harmless) gets a new connection,
as a failed `SELECT 1` would. What it cannot see, a network path that died silently, a `SELECT 1` would only find
after the TCP timeout as well.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper
from psycopg import pq


def _nothing_waiting(fileno: int) -> bool:
    """Whether the socket has no byte to read and is not closed by the peer; never blocks.

    poll(2) with a zero timeout reports a byte to read, the end of the stream, an error and a descriptor that is not
    open alike; no event at all means the server has had nothing to say. One system call, no socket object: a probe
    through socket.socket(fileno=...) cost three times as much CPU, on every request."""
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return False  # a failed or unfinished transaction: Django's own check would fail on it too
        try:
            return _nothing_waiting(connection.pgconn.socket)
        except Exception:  # noqa: BLE001 - psycopg raises OperationalError for a connection it already knows is lost
            return False
