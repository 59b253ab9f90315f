"""One load phase: a request shape, driven by wrk (bench/load.lua) for a warm-up and then a measured run."""

from __future__ import annotations

import json
import resource
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import BenchError, Supervisor, tool_path

LUA = Path(__file__).resolve().parent / "load.lua"
MARK = "BENCH_JSON "


@dataclass
class Phase:
    """What wrk sends. `values` feed the body's {{VALUE}}: spent once each ("consume") or round and round."""

    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    values: list[str] | None = None
    mode: str = "cycle"


@dataclass
class Load:
    """How hard and from where: wrk's connections and threads, and the cores it may run on (None: any)."""

    connections: int
    threads: int
    cpus: str | None
    timeout_s: int = 10


def _files(phase: Phase, directory: Path, values: list[str] | None) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    headers = directory / "headers.txt"
    headers.write_text("".join(f"{name}: {value}\n" for name, value in phase.headers.items()))
    body = "-"
    if phase.body is not None:
        (directory / "body.txt").write_text(phase.body)
        body = str(directory / "body.txt")
    values_file = "-"
    if values is not None:
        (directory / "values.txt").write_text("\n".join(values) + "\n")
        values_file = str(directory / "values.txt")
    return [phase.method, phase.path, str(headers), body, values_file, phase.mode]


def parse(output: str) -> dict:
    """The JSON line load.lua's done() printed, with requests per second added."""
    for line in output.splitlines():
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6) if result["duration_us"] else 0.0
            result["statuses"] = result["statuses"] or ""
            result["socket_errors"] = sum(result["errors"][kind] for kind in ("connect", "read", "write", "timeout"))
            return result
    raise BenchError(f"wrk printed no result line:\n{output[-2000:]}")


def drive(supervisor: Supervisor, base_url: str, phase: Phase, load: Load, *, seconds: float, label: str,
          values: list[str] | None = None) -> dict:
    """Run wrk for `seconds` against base_url with this phase's requests; returns load.lua's parsed result."""
    if phase.values is not None and values is None:
        values = phase.values
    directory = supervisor.unique_path(label)
    arguments = _files(phase, directory, values)
    threads = max(1, min(load.threads, load.connections))
    argv = [tool_path("wrk"), f"-t{threads}", f"-c{load.connections}", f"-d{max(1, round(seconds))}s",
            f"--timeout={load.timeout_s}s", "-s", str(LUA), base_url, "--", *arguments, str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = supervisor.run(f"wrk-{directory.name}", argv, env={"PATH": "/usr/bin:/bin"}, cpus=load.cpus,
                            timeout=seconds + load.timeout_s + 30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse(output)
    # wrk is the only child reaped meanwhile: its CPU time says whether the load generator itself was saturated.
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["wrk_cpu_percent"] = round(100 * used / (result["duration_us"] / 1e6), 1) if result["duration_us"] else None
    return result


def problems(result: dict) -> list[str]:
    """Why a wrk run does not count as clean: socket errors, timeouts, non-2xx answers, single-use values run out."""
    found = []
    errors = result["errors"]
    for kind in ("connect", "read", "write", "timeout"):
        if errors[kind]:
            found.append(f"{errors[kind]} {kind} errors")
    if result["non2xx"]:
        found.append(f"{result['non2xx']} non-2xx responses ({result['statuses']})")
    if result["exhausted"]:
        found.append(f"{result['exhausted']} wrk threads ran out of single-use values")
    if result["requests"] == 0:
        found.append("no request completed")
    return found
