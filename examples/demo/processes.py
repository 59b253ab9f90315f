"""Child processes of the demo: started in their own session, logged to a file, waited for, and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests


class StartupError(RuntimeError):
    """A part of the demo did not start; the message says which and where its log is."""


class Process:
    """One started program. Only this object's own process group is ever signalled."""

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> None:
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "ab")  # closed in stop()
        self._popen = subprocess.Popen(  # noqa: S603 (argv is built by this package, never from user input)
            list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self._popen.pid

    def running(self) -> bool:
        return self._popen.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to this process's own group, SIGKILL after `timeout` seconds; idempotent."""
        if self.running():
            try:
                os.killpg(self._popen.pid, signal.SIGTERM)
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self._popen.pid, signal.SIGKILL)
                self._popen.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        self._log.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run_checked(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float = 120,
                stdin: str | None = None) -> str:
    """Run a command to completion and return its standard output; StartupError with its stderr if it fails."""
    try:
        result = subprocess.run(  # noqa: S603 (argv is built by this package)
            list(argv), env=dict(env), cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StartupError(f"{' '.join(argv[:4])} did not finish within {timeout} s.") from None
    if result.returncode != 0:
        raise StartupError(f"{' '.join(argv[:4])} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def wait_until(process: Process, url: str, *, ready: Callable[[requests.Response], bool], timeout: float) -> None:
    """Poll `url` until `ready(response)` holds; StartupError (with the log's tail) if the process dies or time runs
    out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running():
            raise StartupError(f"{process.name} exited during startup; see {process.log_path}:\n{process.log_tail()}")
        try:
            if ready(requests.get(url, timeout=2)):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise StartupError(f"{process.name} was not ready within {timeout} s; see {process.log_path}:\n"
                       f"{process.log_tail()}")
