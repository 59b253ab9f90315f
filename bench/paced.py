"""Latency at a stated rate: requests started on a fixed schedule over N keep-alive connections, each timed from
the moment it was due.

    taskset -c 1 .venv/bin/python -m bench.paced --url URL --phase FILE --rate 30 --seconds 20 --warmup 3 \
        --connections 16

Why beside wrk: wrk keeps every connection busy, so its latency at 16 connections is, by Little's law, 16 ÷ the
throughput. For a path that costs 25 ms of the core, that is 400 ms whatever the code does, and it says nothing
about how fast the path answers while it carries the rate it must sustain. Here request k is due at
t0 + k / rate and goes out on connection k mod N, so the connections take turns and the starts are evenly spaced.
Each request is timed from when it was due, not from when it was sent: one held back because its connection was
still waiting for an earlier answer counts that wait too (no coordinated omission, as in wrk2). The first
`--warmup` seconds of the schedule are sent but not counted. With `--arrivals poisson` the gaps between due
moments are random (exponential, the same mean, a fixed seed) instead of even: arrivals as independent users make
them, which queue more at the same rate.

FILE is JSON: {"method", "path", "headers", "body", "values"}; the body's {{VALUE}} takes the values in turn.
Prints one JSON line: {"warmup": result, "measured": result}, each shaped like bench/wrk.parse's, so the same
checks (bench.wrk.problems) apply.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

# http.client raises these for a refused, reset or timed-out connection; each is counted like wrk's error kinds.
_CONNECT_ERRORS = (ConnectionRefusedError,)
_TIMEOUT_ERRORS = (TimeoutError,)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


class _Tally:
    """Outcomes of one part of the schedule (warm-up or measured), filled by every connection's thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies_us: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
        self.first_due: float | None = None
        self.last_done: float | None = None

    def add(self, *, due: float, done: float, status: int | None, error: str | None) -> None:
        with self.lock:
            self.first_due = due if self.first_due is None else min(self.first_due, due)
            self.last_done = done if self.last_done is None else max(self.last_done, done)
            if error is not None:
                self.errors[error] += 1
                return
            self.latencies_us.append((done - due) * 1e6)
            self.statuses[status] += 1

    def result(self) -> dict:
        latencies = sorted(self.latencies_us)
        duration_us = int(((self.last_done or 0) - (self.first_due or 0)) * 1e6)
        non2xx = sum(count for status, count in self.statuses.items() if not 200 <= status < 300)
        result = {
            "requests": len(latencies), "duration_us": duration_us, "errors": self.errors, "non2xx": non2xx,
            "statuses": ",".join(f"{status}={count}" for status, count in sorted(self.statuses.items())
                                 if not 200 <= status < 300),
            "exhausted": 0,
            "latency_us": {name: _percentile(latencies, fraction) if latencies else 0.0
                           for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
        }
        result["rps"] = result["requests"] / (duration_us / 1e6) if duration_us else 0.0
        result["socket_errors"] = sum(self.errors.values())
        return result


def _error_kind(error: Exception) -> str:
    if isinstance(error, _CONNECT_ERRORS):
        return "connect"
    if isinstance(error, _TIMEOUT_ERRORS):
        return "timeout"
    return "read"


def schedule(*, rate: float, count: int, arrivals: str = "even", seed: int = 8) -> list[float]:
    """Seconds from the start at which each of `count` requests is due: evenly spaced, or a Poisson process."""
    if arrivals == "even":
        return [k / rate for k in range(count)]
    if arrivals != "poisson":
        raise ValueError(f"unknown arrivals {arrivals!r}")
    draw, due, moments = random.Random(seed), 0.0, []  # noqa: S311 - a repeatable load schedule, no secret
    for _ in range(count):
        moments.append(due)
        due += draw.expovariate(rate)
    return moments


def run(*, url: str, phase: dict, rate: float, seconds: float, warmup: float, connections: int,
        arrivals: str = "even", timeout: float = 10.0) -> dict:
    """Send the schedule and return {"warmup": result, "measured": result}."""
    target = urllib.parse.urlsplit(url)
    values = phase.get("values") or [""]
    total_warmup, total = int(rate * warmup), int(rate * (warmup + seconds))
    due_at = schedule(rate=rate, count=total, arrivals=arrivals)
    tallies = {"warmup": _Tally(), "measured": _Tally()}
    start = time.perf_counter() + 0.2  # every thread is waiting on its first slot before the first is due

    def connection(index: int) -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
        for k in range(index, total, connections):
            due = start + due_at[k]
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            body = phase.get("body")
            if body is not None:
                body = body.replace("{{VALUE}}", values[k % len(values)])
            status, error = None, None
            try:
                conn.request(phase["method"], phase["path"], body=body, headers=phase.get("headers") or {})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as failure:
                error = _error_kind(failure)
                conn.close()  # the next request opens a new connection
            tallies["warmup" if k < total_warmup else "measured"].add(
                due=due, done=time.perf_counter(), status=status, error=error)
        conn.close()

    threads = [threading.Thread(target=connection, args=(index,), daemon=True) for index in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = {name: tally.result() for name, tally in tallies.items()}
    results["measured"]["rate"] = rate
    results["measured"]["arrivals"] = arrivals
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--phase", required=True, type=Path)
    parser.add_argument("--rate", required=True, type=float, help="requests started per second")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds of the schedule")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of the schedule sent first, not counted")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--arrivals", choices=("even", "poisson"), default="even")
    args = parser.parse_args()
    phase = json.loads(args.phase.read_text())
    print(json.dumps(run(url=args.url, phase=phase, rate=args.rate, seconds=args.seconds, warmup=args.warmup,
                         connections=args.connections, arrivals=args.arrivals)))


if __name__ == "__main__":
    main()
