"""The benchmark harness itself: wrk's script spends single-use values once and counts every non-2xx answer, and a
run with any failed request is never reported as meeting its targets."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import report
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


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


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
