"""The PostgreSQL health check that looks at the socket instead of sending SELECT 1 (idp/postgresql/base.py)."""

import time

import pytest
from django.db import connection, connections

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend's own check"),
]


def _fresh_connection():
    other = connections.create_connection("default")
    other.ensure_connection()
    return other


def test_a_healthy_idle_connection_is_reused_without_a_round_trip(monkeypatch):
    other = _fresh_connection()

    def no_statement(*args, **kwargs):
        raise AssertionError("the health check sent a statement to the server")

    monkeypatch.setattr(type(other.connection), "cursor", no_statement)
    monkeypatch.setattr(type(other.connection), "execute", no_statement)
    try:
        assert other.is_usable()
    finally:
        monkeypatch.undo()
        other.close()


def test_a_connection_the_server_terminated_is_not_reused_and_the_next_request_reconnects():
    other = _fresh_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [other.connection.info.backend_pid])
        deadline = time.monotonic() + 5
        while other.is_usable() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not other.is_usable()
        # What Django does with an unusable connection at the start of a request: close it and connect again.
        other.health_check_done = False
        other.close_if_health_check_failed()
        with other.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    finally:
        other.close()


def test_a_connection_inside_a_failed_transaction_is_not_reused():
    other = _fresh_connection()
    try:
        other.connection.execute("BEGIN")
        with pytest.raises(Exception):  # noqa: B017, PT011 - any error puts the transaction in the failed state
            other.connection.execute("SELECT 1/0")
        assert not other.is_usable()
    finally:
        other.close()
