"""The benchmark harness itself: wrk's script spends single-use values once and counts every non-2xx answer, the
paced generator times each request from when it was due, and a run with any failed request is never reported as
meeting its targets."""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import paced, report
from bench.procs import Supervisor
from bench.wrk import Load, Phase, drive, parse, problems

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None or shutil.which("taskset") is None,
                               reason="wrk is not installed (apt-get install wrk)")


class _Recorder(BaseHTTPRequestHandler):
    """Answers 200 to bodies ending in an even number and 404 to odd ones; remembers every body."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with self.lock:
            self.seen.append(body)
        value = body.rsplit("=", 1)[1]
        status = 200 if value.isdigit() and int(value) % 2 == 0 else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]):
    """The handler on a loopback port for the block's duration; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def recorder():
    _Recorder.seen = []
    with _serving(_Recorder) as url:
        yield url


@needs_wrk
def test_single_use_values_are_sent_at_most_once_and_running_out_is_reported(recorder, tmp_path: Path):
    values = [str(2 * number) for number in range(200)]  # all even: every answer is a 200
    phase = Phase("spend", "POST", "/token", {"Content-Type": "application/x-www-form-urlencoded"},
                  "grant_type=x&value={{VALUE}}", values=values, mode="consume")
    result = drive(Supervisor(tmp_path), recorder, phase, Load(connections=4, threads=2, cpus=None), seconds=2,
                   label="spend")
    sent = [body.rsplit("=", 1)[1] for body in _Recorder.seen if not body.endswith("=bench-values-exhausted")]
    assert len(sent) == len(set(sent)), "a single-use value was sent twice"
    # wrk calls request() once on the first thread to check the script, before any connection: that value is
    # drawn but never sent.
    assert set(sent) <= set(values) and len(set(values) - set(sent)) <= 1
    assert result["exhausted"] > 0
    assert any("ran out of single-use values" in problem for problem in problems(result))


@needs_wrk
def test_every_non_2xx_answer_is_counted_by_status(recorder, tmp_path: Path):
    phase = Phase("mixed", "POST", "/token", {}, "value={{VALUE}}", values=["1", "2"], mode="cycle")
    result = drive(Supervisor(tmp_path), recorder, phase, Load(connections=2, threads=1, cpus=None), seconds=1,
                   label="mixed")
    odd = sum(1 for body in _Recorder.seen if body.endswith("=1"))
    assert result["non2xx"] > 0
    assert result["statuses"] == f"404={result['non2xx']}"
    assert abs(result["non2xx"] - odd) <= 2  # requests still in flight when wrk stopped are not counted by it
    assert f"{result['non2xx']} non-2xx responses (404={result['non2xx']})" in problems(result)


def _row(**changes) -> dict:
    row = {"path": "client_credentials", "rps": 500.0, "p50_ms": 20.0, "p90_ms": 30.0, "p99_ms": 60.0,
           "socket_errors": 0, "non2xx": 0, "problems": [], "warmup_problems": [], "rss_max_mib": 90.0}
    row.update(changes)
    return row


def test_a_row_with_a_failed_request_never_meets_its_target():
    assert report.verdict(_row()) == []
    assert report.verdict(_row(problems=["1 non-2xx responses (500=1)"], non2xx=1)) == ["errors"]
    assert report.verdict(_row(warmup_problems=["3 timeout errors"])) == ["errors"]


def test_throughput_latency_and_memory_misses_are_each_named():
    assert report.verdict(_row(rps=399.0, p99_ms=100.0, rss_max_mib=151.0)) == ["req/s", "p99", "RSS"]


def test_failures_anywhere_in_the_run_raise_the_banner():
    results = {"rows": [_row(), _row(path="jwks", problems=["2 read errors"])],
               "scale_out": {"problems": {"lockout": ["the lockout was not shown to be shared by both instances"]}}}
    found = report.failures(results)
    assert found == ["jwks: 2 read errors",
                     "scale_out lockout: the lockout was not shown to be shared by both instances"]
    assert "ITS NUMBERS DO NOT COUNT" in report.banner(found)
    assert report.failures({"rows": [_row()]}) == []


def test_wrk_output_without_a_result_line_is_an_error():
    from bench.procs import BenchError

    with pytest.raises(BenchError, match="no result line"):
        parse("Running 1s test @ http://127.0.0.1:1\n")


class _Slow(BaseHTTPRequestHandler):
    """Answers 200 after 100 ms, one request at a time across all connections."""

    protocol_version = "HTTP/1.1"
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            time.sleep(0.1)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    with _serving(_Slow) as url:
        yield url


def test_paced_latency_counts_the_wait_of_requests_held_back_by_a_slow_server(slow_server):
    """Coordinated omission: each answer takes 100 ms, but with requests due every 50 ms the backlog grows, and the
    timing from each request's due moment shows it where timing from its send would not."""
    phase = {"method": "POST", "path": "/login", "headers": {"Content-Type": "text/plain"}, "body": "v={{VALUE}}",
             "values": ["1"]}
    outcome = paced.run(url=slow_server, phase=phase, rate=20, seconds=1, warmup=0, connections=2)
    measured = outcome["measured"]
    assert measured["requests"] == 20 and problems(measured) == []
    assert measured["latency_us"]["max"] >= 900_000  # the 20th was due at 0.95 s and answered at about 2 s
    assert measured["rps"] < 12  # the server's 10 a second, not the schedule's 20
    row = _row(path="password_login", mode="paced", rate=20, rps=measured["rps"],
               p99_ms=measured["latency_us"]["p99"] / 1000)
    assert report.verdict(row) == ["rate", "p99"]


def test_paced_requests_start_on_schedule_and_every_non_2xx_is_counted(recorder):
    phase = {"method": "POST", "path": "/token", "headers": {}, "body": "value={{VALUE}}", "values": ["1", "2"]}
    started = time.perf_counter()
    outcome = paced.run(url=recorder, phase=phase, rate=40, seconds=1, warmup=0.5, connections=4)
    elapsed = time.perf_counter() - started
    assert 1.4 <= elapsed < 3  # 60 requests due over 1.5 s, each answered at once
    assert len(_Recorder.seen) == 60
    warmup, measured = outcome["warmup"], outcome["measured"]
    assert warmup["requests"] == 20 and measured["requests"] == 40
    assert measured["non2xx"] == 20 and measured["statuses"] == "404=20"
    assert "20 non-2xx responses (404=20)" in problems(measured)
    assert 36 <= measured["rps"] <= 44
    assert measured["latency_us"]["p99"] < 250_000  # answered at once: only thread wake-ups on a busy CI machine


def test_login_p99_is_judged_at_its_rate_and_its_saturated_row_still_needs_the_throughput():
    saturated = _row(path="password_login", rps=44.0, p99_ms=580.0)
    assert report.verdict(saturated) == []
    assert report.verdict({**saturated, "rps": 29.0}) == ["req/s"]
    at_rate = _row(path="password_login", mode="paced", rate=30, rps=30.0, p99_ms=31.0)
    assert report.verdict(at_rate) == []
    assert report.verdict({**at_rate, "p99_ms": 100.0}) == ["p99"]
    assert report.verdict({**at_rate, "rps": 28.0}) == ["rate"]
    table = report.table([{**saturated, "server_cpu_percent": 100}, {**at_rate, "server_cpu_percent": 70}])
    assert "| password_login at 30/s, paced | 30 |" in table
    assert "| 30, p99 < 100 | yes |" in table
    assert "yes (p99 judged at 30/s, next row)" in table


def test_poisson_arrivals_keep_the_mean_rate_and_are_repeatable():
    even = paced.schedule(rate=30, count=900)
    assert even[:3] == [0.0, 1 / 30, 2 / 30] and even[-1] == pytest.approx(899 / 30)
    random_starts = paced.schedule(rate=30, count=900, arrivals="poisson")
    assert random_starts == paced.schedule(rate=30, count=900, arrivals="poisson")
    gaps = [later - earlier for earlier, later in zip(random_starts, random_starts[1:], strict=False)]
    assert 27 <= len(gaps) / sum(gaps) <= 33
    assert max(gaps) > 3 / 30 and min(gaps) < 0.1 / 30  # bursts and lulls, unlike the even schedule
    with pytest.raises(ValueError, match="unknown arrivals"):
        paced.schedule(rate=30, count=10, arrivals="bursty")
