"""What auditing costs the token endpoint: client-credentials requests timed in-process with and without events.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/idp_audit_cost .venv/bin/python bench/audit_cost.py [N]

Creates (and afterwards drops) that database on PostgreSQL. Runs N requests per mode (default 2000) through
Django's test client in one process, alternating blocks of three modes: event_record replaced by a no-op, events
written before the response (IDP_AUDIT_BATCH_MS=0), and events batched by the background writer (audit/writer.py,
the configured IDP_AUDIT_BATCH_MS and IDP_AUDIT_BATCH_SIZE). It prints the median and mean time per request of
each and the share auditing takes of the median. The writer thread shares the process (and its GIL): its work
shows in the batched mode's mean, which spreads it over the requests it delays.
In-process, so it measures the IdP's own work (and the database round trips), not HTTP parsing; the load test in
bench/ measures the whole path.
"""

from __future__ import annotations

import base64
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
os.environ.setdefault("IDP_VAR_DIR", str(Path(__file__).resolve().parents[1] / "var" / "bench-audit-cost"))


def main(requests_per_mode: int) -> None:
    import django
    from django.conf import settings

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from audit.services import events_flush, routine_writer
    from clients.services import client_create
    from idp import token_audit
    from idp.keys import signing_key_ensure

    setup_test_environment()
    creation = connection.creation
    test_db = creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        call_command("migrate", verbosity=0)
        signing_key_ensure()
        issued = client_create(name="bench", client_type="confidential", grant_types=["client-credentials"],
                               allowed_scopes=["orders:read"], audiences=["https://orders.example.com"])
        auth = "Basic " + base64.b64encode(f"{issued.client.client_id}:{issued.client_secret}".encode()).decode()
        client = Client(HTTP_AUTHORIZATION=auth)
        real_record = token_audit.event_record
        batch_ms = settings.IDP_AUDIT_BATCH_MS or 50

        def timed(block: int) -> list[float]:
            samples = []
            for _ in range(block):
                started = time.perf_counter()
                response = client.post("/o/token/", {"grant_type": "client_credentials"})
                samples.append(time.perf_counter() - started)
                assert response.status_code == 200, response.content
            return samples

        timed(200)  # warm up: key cache, connection, code paths
        synchronous, batched, silent = [], [], []
        for _ in range(max(1, requests_per_mode // 200)):
            token_audit.event_record = real_record
            settings.IDP_AUDIT_BATCH_MS = 0
            synchronous += timed(200)
            settings.IDP_AUDIT_BATCH_MS = batch_ms
            batched += timed(200)
            events_flush()  # the next mode does not pay for this one's last batch
            token_audit.event_record = lambda **kwargs: None
            silent += timed(200)
        token_audit.event_record = real_record
        without = statistics.median(silent) * 1000
        print(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']}), "
              f"{len(silent)} requests per mode, audit durable commit: {settings.IDP_AUDIT_DURABLE_COMMIT}")
        print(f"client credentials without events: median {without:.2f} ms, mean {statistics.mean(silent) * 1000:.2f}"
              " ms per request")
        for mode, samples in (("written before the response (IDP_AUDIT_BATCH_MS=0)", synchronous),
                              (f"batched (IDP_AUDIT_BATCH_MS={batch_ms}, IDP_AUDIT_BATCH_SIZE="
                               f"{settings.IDP_AUDIT_BATCH_SIZE})", batched)):
            with_events = statistics.median(samples) * 1000
            print(f"events {mode}: median {with_events:.2f} ms, mean {statistics.mean(samples) * 1000:.2f} ms; "
                  f"auditing costs {with_events - without:.2f} ms = {(with_events - without) / with_events:.0%} of "
                  "the median request")
    finally:
        routine_writer.stop()  # its thread's connection would keep the database from being dropped
        creation.destroy_test_db(test_db, verbosity=0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
