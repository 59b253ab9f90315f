"""Time the audit admin (list, filters, search, CSV export, dashboard) on a million events in PostgreSQL.

    .venv/bin/python bench/audit_events.py [--events 1000000] [--runs 5] [--explain] [--chain] [--keep|--reuse]

Creates the database idp_bench_audit on BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432), migrates it,
loads the events with one INSERT ... SELECT over generate_series (about 180 days of traffic; the hash chain is
not valid, which the pages do not read), then requests each page through Django's test client as a superuser
and prints the median time and the number of queries. With --chain it first computes the real hash chain
over the loaded events, and afterwards times `audit verify` over all of them and `audit prune --older-than 90d`.
The database is dropped at the end, even on failure (unless --keep).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "idp_bench_audit"
CSV_FIRST_ROWS = 1000

# Roughly an IdP's mix: mostly token issuance and sign-ins, a tenth failures, one alert per thousand events.
LOAD_SQL = """
INSERT INTO audit_event (seq, created_at, type, outcome, user_id, username, client_id, ip, user_agent, reason,
                         detail, prev_hash, hash)
SELECT i,
       now() - make_interval(secs => (%(n)s - i) * (180 * 86400.0 / %(n)s)),
       CASE WHEN i %% 1000 = 0 THEN 'alert.brute_force'
            WHEN r < 40 THEN 'token.issued' WHEN r < 58 THEN 'login.succeeded' WHEN r < 70 THEN 'login.failed'
            WHEN r < 78 THEN 'token.failed' WHEN r < 84 THEN 'token.rejected' WHEN r < 92 THEN 'logout'
            WHEN r < 96 THEN 'consent.granted' ELSE 'access.denied' END,
       CASE WHEN i %% 1000 = 0 THEN 'alert' WHEN r BETWEEN 58 AND 83 OR r >= 96 THEN 'failure' ELSE 'success' END,
       CASE WHEN r BETWEEN 40 AND 69 OR r >= 84 THEN 1 + (i * 31) %% 50000 END,
       CASE WHEN r BETWEEN 40 AND 69 OR r >= 84 THEN 'user' || (1 + (i * 31) %% 50000) ELSE '' END,
       CASE WHEN r < 40 OR r BETWEEN 70 AND 83 THEN 'client-' || (i * 7) %% 300 ELSE '' END,
       ('10.' || (i * 17) %% 256 || '.' || (i * 13) %% 256 || '.' || 1 + i %% 250)::inet,
       'Mozilla/5.0 (X11; Linux x86_64) bench',
       CASE WHEN r BETWEEN 58 AND 69 THEN (ARRAY['bad_password', 'unknown_user', 'locked'])[1 + i %% 3]
            WHEN r BETWEEN 70 AND 83 THEN (ARRAY['invalid_grant', 'invalid_client', 'expired'])[1 + i %% 3]
            WHEN i %% 1000 = 0 THEN 'threshold' ELSE '' END,
       jsonb_build_object('jti', md5(i::text)),
       md5(i::text) || md5((i + 1)::text),
       md5((-i)::text) || md5((-i - 1)::text)
FROM generate_series(1, %(n)s::bigint) AS i, LATERAL (SELECT (i * 7919) %% 100 AS r) AS mix
"""


def _server() -> str:
    return os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def _admin_sql(statement: str) -> None:
    with psycopg.connect(f"{_server()}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def _setup_django() -> None:
    os.environ["DATABASE_URL"] = f"{_server()}/{DATABASE}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic either

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, and query capture without DEBUG
    # As in the tests: the manifest storage needs `collectstatic`, which a benchmark does not run.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _load(count: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(LOAD_SQL, {"n": count})
        cursor.execute("UPDATE audit_chainhead SET last_seq = %s WHERE id = 1", [count])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_event")
    return time.perf_counter() - started


def _rechain() -> float:
    """Give every loaded event its real keyed hash and link, so that `audit verify` passes on the whole table."""
    from django.db import connection

    from audit.chain import GENESIS_HASH, event_hash, head_mac
    from audit.models import Event

    started = time.perf_counter()
    previous, after = GENESIS_HASH, 0
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE rechain (id bigint PRIMARY KEY, prev_hash text, hash text)")
        while page := list(Event.objects.filter(seq__gt=after).order_by("seq")[:5000]):
            links = []
            for event in page:
                event.prev_hash = previous
                previous = event_hash(event)
                links.append((event.pk, event.prev_hash, previous))
            # One COPY per page: the connection can run no other query while a COPY is open.
            with cursor.copy("COPY rechain (id, prev_hash, hash) FROM STDIN") as copy:
                for link in links:
                    copy.write_row(link)
            after = page[-1].seq
        cursor.execute(
            "UPDATE audit_event e SET prev_hash = r.prev_hash, hash = r.hash FROM rechain r WHERE e.id = r.id"
        )
        cursor.execute("SELECT last_seq, anchor_seq, anchor_hash FROM audit_chainhead WHERE id = 1")
        last_seq, anchor_seq, anchor_hash = cursor.fetchone()
        cursor.execute("UPDATE audit_chainhead SET last_hash = %s, mac = %s WHERE id = 1", [
            previous, head_mac(last_seq=last_seq, last_hash=previous, anchor_seq=anchor_seq, anchor_hash=anchor_hash)])
        cursor.execute("DROP TABLE rechain")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_event")
    return time.perf_counter() - started


def _measure_chain() -> None:
    import resource
    from datetime import timedelta

    from audit.integrity import chain_verify, events_prune

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    report = chain_verify()
    seconds = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    print(f"\naudit verify: {report.summary()} in {seconds:.1f} s (peak memory grew {grown:.0f} MiB)")
    started = time.perf_counter()
    result = events_prune(older_than=timedelta(days=90))
    print(f"audit prune --older-than 90d: {result.count} events in {time.perf_counter() - started:.1f} s, "
          f"chain now starts at #{result.anchor_seq}")
    started = time.perf_counter()
    print(f"audit verify: {chain_verify().summary()} in {time.perf_counter() - started:.1f} s")


def _cases(count: int) -> list[tuple[str, str, dict]]:
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, host(ip) FROM audit_event WHERE seq > %s AND user_id IS NOT NULL "
                       "ORDER BY seq LIMIT 1", [count // 2])
        user_id, ip = cursor.fetchone()
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    week = {"created_at__gte": str(today - timedelta(days=6)),
            "created_at__lt": str(today + timedelta(days=1))}
    events = "/admin/audit/event/"
    return [
        ("list, unfiltered", events, {}),
        ("list, page 50", events, {"p": "50"}),
        ("filter type=token.failed (8%)", events, {"type": "token.failed"}),
        ("filter type=alert.brute_force (0.1%)", events, {"type": "alert.brute_force"}),
        ("filter outcome=failure", events, {"outcome__exact": "failure"}),
        ("filter outcome=alert", events, {"outcome__exact": "alert"}),
        ("filter date=past 7 days", events, week),
        ("filter user", events, {"user__id__exact": str(user_id)}),
        ("filter client", events, {"client_id": "client-7"}),
        ("filter ip", events, {"ip": ip}),
        ("filter outcome=failure + type=login.failed", events, {"outcome__exact": "failure", "type": "login.failed"}),
        ("filter outcome=failure + past 7 days", events, {"outcome__exact": "failure", **week}),
        ("filter type=login.failed + outcome=success (none)", events,
         {"type": "login.failed", "outcome__exact": "success"}),
        ("search username", events, {"q": f"user{user_id}"}),
        ("search, nothing matches", events, {"q": "nobody-by-this-name"}),
        ("search ip", events, {"q": ip}),
        ("search client", events, {"q": "client-7"}),
        (f"CSV export, first {CSV_FIRST_ROWS} rows", f"{events}export.csv", {}),
        ("CSV export, whole user filter", f"{events}export.csv", {"user__id__exact": str(user_id)}),
        ("event page", f"{events}{count // 2}/change/", {}),
        ("dashboard", f"{events}dashboard/", {}),
    ]


def _fetch(client, url: str, params: dict) -> int:
    response = client.get(url, params)
    assert response.status_code == 200, (url, params, response.status_code)
    if response.streaming:
        rows = 0
        for chunk in response.streaming_content:
            rows += chunk.count(b"\n")
            if "user__id__exact" not in params and rows > CSV_FIRST_ROWS:
                break
        response.close()
        return rows
    return len(response.content)


def _explain(queries: list[dict]) -> None:
    from django.db import connection

    slowest = max(queries, key=lambda q: float(q["time"]))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
        plan = "\n".join("      " + row[0] for row in cursor.fetchall())
    print(f"    slowest query ({float(slowest['time']) * 1000:.1f} ms):\n      {slowest['sql'][:300]}\n{plan}")


def _measure(count: int, runs: int, explain: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True, "password": "!"}
    )
    client = Client()
    client.force_login(admin)
    print(f"{'page':<48} {'median ms':>10} {'max ms':>8} {'queries':>8}")
    for label, url, params in _cases(count):
        _fetch(client, url, params)  # warm the caches a real server would have warm
        timings = []
        for _ in range(runs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                _fetch(client, url, params)
                timings.append((time.perf_counter() - started) * 1000)
        print(f"{label:<48} {statistics.median(timings):>10.1f} {max(timings):>8.1f} {len(queries):>8}")
        if explain:
            _explain(queries.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query of each page")
    parser.add_argument("--chain", action="store_true",
                        help="also give the events a valid hash chain, then time `audit verify` and `audit prune`")
    parser.add_argument("--keep", action="store_true", help="keep the database for a later --reuse")
    parser.add_argument("--reuse", action="store_true", help="time the database a --keep run left (no load)")
    args = parser.parse_args()

    if not args.reuse:
        _admin_sql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        _admin_sql(f"CREATE DATABASE {DATABASE}")
    try:
        _setup_django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if args.reuse:
            print(f"reusing {DATABASE}; median of {args.runs} runs after one warm-up\n")
            args.chain = False  # the prune of a --chain run already changed the table
        else:
            seconds = _load(args.events)
            print(f"loaded {args.events} events in {seconds:.1f} s")
            if args.chain:
                print(f"chained them with real hashes in {_rechain():.1f} s")
            print(f"median of {args.runs} runs after one warm-up\n")
        _measure(args.events, args.runs, args.explain)
        if args.chain:
            _measure_chain()
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not args.keep:
            _admin_sql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
