"""The IdP's processes in a benchmark run: gunicorn instances and the seeding helper (bench/seed.py)."""

from __future__ import annotations

import json
import os
import select
import subprocess
from dataclasses import dataclass

from bench import procs
from bench.procs import GUNICORN, PYTHON, ROOT, BenchError, Started, Supervisor

POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DATABASE = "idp_bench"
VAR = ROOT / "var" / "bench"
# Settings the run decides; inherited values would make it measure some other configuration.
_OWN_ENVIRONMENT = ("IDP_", "DATABASE_", "REDIS_URL", "SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR", "DEBUG", "LOG_LEVEL",
                    "DJANGO_SETTINGS_MODULE")


def server_env(issuer: str, *, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The IdP's environment: the bench database, a loopback issuer (dev secrets in var/bench), metrics files."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_ENVIRONMENT)}
    metrics = VAR / f"prometheus-{name}"
    metrics.mkdir(parents=True, exist_ok=True)
    for stale in metrics.iterdir():  # prometheus_client's multiprocess files must start empty
        stale.unlink()
    env.update(DJANGO_SETTINGS_MODULE="idp.settings", DATABASE_URL=f"{POSTGRES}/{DATABASE}", IDP_ISSUER=issuer,
               IDP_VAR_DIR=str(VAR), PROMETHEUS_MULTIPROC_DIR=str(metrics), **(extra or {}))
    return env


@dataclass
class Instance:
    """One gunicorn master and its workers."""

    name: str
    port: int
    started: Started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time of the master and its workers so far (workers never restart during a run)."""
        pid = self.started.process.pid
        return sum(procs.cpu_seconds(each) for each in [pid, *procs.children(pid)])

    def worker_rss(self) -> list[float]:
        return [rss for pid in procs.children(self.started.process.pid) if (rss := procs.rss_mib(pid)) is not None]


def start_instance(supervisor: Supervisor, *, name: str, issuer: str, workers: int, threads: int, cpus: str | None,
                   port: int | None = None, extra: dict[str, str] | None = None) -> Instance:
    port = port or procs.free_port()
    # The production settings (idp/gunicorn_conf.py: threaded workers with keep-alive), sized by the arguments.
    argv = [str(GUNICORN), "-c", "python:idp.gunicorn_conf", "idp.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(threads), "--no-control-socket"]
    started = supervisor.start(name, argv, env=server_env(issuer, name=name, extra=extra), cpus=cpus)
    instance = Instance(name=name, port=port, started=started)
    procs.wait_http_ok(f"{instance.url}/healthz", timeout=60, watch=started)
    return instance


class SeedHelper:
    """bench/seed.py running with the IdP's settings, answering one JSON command at a time."""

    def __init__(self, supervisor: Supervisor, env: dict[str, str]) -> None:
        read_fd, write_fd = os.pipe()
        self.entry = supervisor.start("seed", [str(PYTHON), "-m", "bench.seed", str(write_fd)], env=env,
                                      stdin=subprocess.PIPE, pass_fds=(write_fd,))
        os.close(write_fd)
        self.answers = os.fdopen(read_fd, "r")
        self._read(timeout=120)

    def _read(self, *, timeout: float) -> dict:
        ready, _, _ = select.select([self.answers], [], [], timeout)
        if not ready:
            raise BenchError(f"bench/seed.py did not answer within {timeout:.0f} s; see {self.entry.log}")
        line = self.answers.readline()
        if not line:
            raise BenchError(f"bench/seed.py exited; see {self.entry.log}")
        return json.loads(line)

    def call(self, command: str, *, timeout: float = 600, **arguments):
        stdin = self.entry.process.stdin
        stdin.write((json.dumps({"command": command, **arguments}) + "\n").encode())
        stdin.flush()
        answer = self._read(timeout=timeout)
        if not answer.get("ok"):
            raise BenchError(f"bench/seed.py {command} failed:\n{answer.get('error')}")
        return answer["result"]
