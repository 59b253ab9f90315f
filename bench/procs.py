"""Processes and the database of a benchmark run: started pinned to a core, waited for, and always cleaned up.

Every process is started in its own session, so stopping it stops what it spawned (gunicorn's workers, nginx's
workers) by that process group's id and nothing else. `Supervisor.stop_all` runs from the `finally` of the run,
which a Ctrl-C (SIGINT) or a SIGTERM/SIGHUP (turned into KeyboardInterrupt) always reaches.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
# What the command needs besides the venv, and how to get it on Debian; the run never installs anything itself.
TOOLS = {"taskset": "apt-get install util-linux", "wrk": "apt-get install wrk", "nginx": "apt-get install nginx-light"}


class BenchError(RuntimeError):
    """The run cannot go on; the message says why and, where it can, what to do."""


def tool_path(name: str) -> str:
    """The absolute path of a required program, or BenchError naming the package that provides it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise BenchError(f"{name} is not installed; install it with `{TOOLS[name]}` (as root) and run again.")
    return path


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def terminate_on_signals() -> None:
    """Make SIGTERM and SIGHUP end the run like Ctrl-C does, so its `finally` cleans up."""

    def _interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)


def ignore_signals() -> None:
    """While cleaning up: a second Ctrl-C must not cut the clean-up short."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    log: Path


@dataclass
class Supervisor:
    """Starts processes (optionally under `taskset -c CPUS`) and stops every one of them at the end."""

    run_dir: Path
    started: list[Started] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, env: dict[str, str], cpus: str | None = None,
              stdin=subprocess.DEVNULL, pass_fds: tuple[int, ...] = ()) -> Started:
        command = [tool_path("taskset"), "-c", cpus, *argv] if cpus is not None else argv
        log = self.unique_path(name, ".log")
        with log.open("ab") as output:
            process = subprocess.Popen(  # noqa: S603 - our own fixed argv, never shell-interpreted
                command, env=env, cwd=ROOT, stdin=stdin, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=pass_fds,
            )
        entry = Started(name=name, process=process, log=log)
        self.started.append(entry)
        return entry

    def unique_path(self, name: str, suffix: str = "") -> Path:
        """run_dir/NAME+SUFFIX, or NAME-2, NAME-3 ... when a stage has already used the name."""
        path, number = self.run_dir / f"{name}{suffix}", 1
        while path.exists():
            number += 1
            path = self.run_dir / f"{name}-{number}{suffix}"
        return path

    def run(self, name: str, argv: list[str], *, env: dict[str, str], cpus: str | None = None,
            timeout: float) -> str:
        """Run a command to completion (killed after `timeout` seconds); returns its output, raises on failure."""
        entry = self.start(name, argv, env=env, cpus=cpus)
        try:
            code = entry.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(entry)
            raise BenchError(f"{name} did not finish within {timeout:.0f} s; see {entry.log}") from None
        finally:
            if entry in self.started and entry.process.poll() is not None:
                self.started.remove(entry)
        output = entry.log.read_text(errors="replace")
        if code != 0:
            raise BenchError(f"{name} failed with exit status {code}; see {entry.log}:\n{output[-2000:]}")
        return output

    def stop(self, entry: Started, timeout: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it if it has not ended after `timeout` seconds."""
        if entry.process.poll() is None:
            try:
                os.killpg(entry.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                entry.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(entry.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                entry.process.wait(timeout=5)
        # Group members that outlived their leader (a gunicorn worker mid-request) go too.
        try:
            os.killpg(entry.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if entry in self.started:
            self.started.remove(entry)

    def stop_all(self) -> None:
        for entry in reversed(list(self.started)):
            self.stop(entry)


def wait_http_ok(url: str, *, timeout: float, watch: Started | None = None) -> None:
    """Poll `url` until it answers 200; BenchError if `watch` exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watch is not None and watch.process.poll() is not None:
            raise BenchError(f"{watch.name} exited while starting; see {watch.log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback http only
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise BenchError(f"{url} did not answer 200 within {timeout:.0f} s")


# --- Process facts. ---------------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's workers of its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the parent pid is the second field after it.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB, from /proc/PID/status; None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of /proc/PID/stat, i.e. 11 and 12 after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all cores since boot, from /proc/stat: the time the hypervisor gave this VM's
    cores to other guests, and all time."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already counted in user)
    return fields[7], sum(fields[:8])


def load_average() -> list[float]:
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


# --- The benchmark database. ---------------------------------------------------------------------------------


def _admin(server: str, statement: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=10) as connection:
        connection.execute(statement)


def database_recreate(server: str, name: str) -> None:
    _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(server, f'CREATE DATABASE "{name}"')


def database_drop(server: str, name: str) -> None:
    _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_settings(server: str) -> dict[str, str]:
    """The server's version and the settings that decide what a commit costs."""
    names = ("server_version", "synchronous_commit", "fsync", "shared_buffers", "max_connections")
    with psycopg.connect(f"{server}/postgres", connect_timeout=10) as connection:
        return {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in names}


def query(server: str, name: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(f"{server}/{name}", connect_timeout=10) as connection:
        return connection.execute(sql, params).fetchall()


def execute(server: str, name: str, sql: str) -> None:
    with psycopg.connect(f"{server}/{name}", autocommit=True, connect_timeout=10) as connection:
        connection.execute(sql)
