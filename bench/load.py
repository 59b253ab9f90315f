"""`make bench`: the IdP under gunicorn pinned to one core with PostgreSQL, loaded by wrk from the other core.

    .venv/bin/python -m bench.load [--duration 10] [--warmup 3] [--connections 16] [--workers 1] [--threads 8]
                                   [--growth] [--scale-out] [--no-profile] [--only PATH ...]

Recreates the database idp_bench, migrates it, runs `bootstrap` (an RS256-2048 signing key), seeds users and
clients (bench/seed.py), starts `gunicorn idp.wsgi` with threaded workers (idp/gunicorn_conf.py) under
`taskset -c 0`, and for each path runs wrk (bench/load.lua) under `taskset -c 1`: a warm-up, then a measured run.
Single-use values (refresh tokens, authorization codes) are minted just before the run that spends them, each sent
once. Local token verification
in the resource-server toolkit runs in one process pinned to core 1 (bench/verify.py). Then, unless --no-profile,
each path is run in-process for its SQL query count and time, and the token paths under cProfile
(bench/profiling.py). --growth and --scale-out add the stages of bench/stages.py.

Prints the Markdown table and writes var/bench/results-<timestamp>.json and .md; the logs of every process are in
var/bench/run-<timestamp>/. Exit status: 0 clean, 2 if any request failed or answered non-2xx (with a banner),
3 if the harness itself failed, 130 on Ctrl-C. Every process it started and the database are removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import shlex
import shutil
import sys
import time
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import procs, report
from bench.calls import FORM, basic, csrf_pair, token_request
from bench.procs import PYTHON, ROOT, BenchError, Supervisor
from bench.server import DATABASE, POSTGRES, VAR, Instance, SeedHelper, server_env, start_instance
from bench.wrk import Load, Phase, drive, problems

PATHS = ("discovery", "jwks", "client_credentials", "introspection", "userinfo", "refresh_token",
         "authorization_code", "password_login", "toolkit_verify")
MAX_CODE_SECONDS = 45  # codes live 60 s (AUTHORIZATION_CODE_EXPIRE_SECONDS); they are minted just before the run
SIGN_IN_USERS = 32
PACED_MIN_SECONDS = 20  # at 30 requests a second, 600 timed requests: the p99 is the 6th slowest



@dataclass
class Run:
    """One benchmark run: its options, processes, seeded users and clients, and the instances under load."""

    args: argparse.Namespace
    supervisor: Supervisor
    seed: SeedHelper | None = None
    setup: dict = field(default_factory=dict)
    password: str = ""
    instances: list[Instance] = field(default_factory=list)
    rate_hint: float = 1500.0  # token-endpoint req/s used to size pools of single-use values

    @property
    def run_dir(self) -> Path:
        return self.supervisor.run_dir

    def worker_rss_max(self) -> float | None:
        sizes = [size for instance in self.instances for size in instance.worker_rss()]
        return round(max(sizes), 1) if sizes else None

    def pool_size(self, seconds: float) -> int:
        """Single-use values for `seconds` of load: twice the fastest token rate seen, never fewer than 500."""
        return min(60_000, max(500, int(2 * self.rate_hint * seconds)))

    def user_access_token(self, url: str) -> str:
        """A fresh user access token (openid, profile, email, roles) from a real code exchange."""
        path = self.run_dir / "codes-for-user-token.txt"
        self.seed.call("mint_codes", count=1, path=str(path))
        token = token_request(url, self.setup["relying_party"], {
            "grant_type": "authorization_code", "code": path.read_text().strip(),
            "redirect_uri": self.setup["redirect_uri"], "code_verifier": self.setup["code_verifier"]})
        return token["access_token"]

    def mint(self, command: str) -> Callable[[int, str], list[str]]:
        def pool(count: int, label: str) -> list[str]:
            path = self.run_dir / f"pool-{label}.txt"
            self.seed.call(command, count=count, path=str(path))
            return path.read_text().split()

        return pool


def phase_for(run: Run, name: str, url: str) -> tuple[Phase, Callable[[int, str], list[str]] | None]:
    """The requests of one path, and the minting function of its single-use values (None when it has none)."""
    setup = run.setup
    form = {"Content-Type": FORM}
    if name == "discovery":
        return Phase(name, "GET", "/.well-known/openid-configuration"), None
    if name == "jwks":
        return Phase(name, "GET", "/.well-known/jwks.json"), None
    if name == "client_credentials":
        return Phase(name, "POST", "/o/token/", {"Authorization": basic(setup["service"]), **form},
                     "grant_type=client_credentials"), None
    if name == "introspection":
        body = urllib.parse.urlencode({"token": run.user_access_token(url), "token_type_hint": "access_token"})
        return Phase(name, "POST", "/o/introspect/", {"Authorization": basic(setup["relying_party"]), **form},
                     body), None
    if name == "userinfo":
        return Phase(name, "GET", "/o/userinfo/", {"Authorization": f"Bearer {run.user_access_token(url)}"}), None
    if name == "refresh_token":
        return Phase(name, "POST", "/o/token/", {"Authorization": basic(setup["relying_party"]), **form},
                     "grant_type=refresh_token&refresh_token={{VALUE}}", values=[], mode="consume"), \
            run.mint("mint_refresh_tokens")
    if name == "authorization_code":
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "redirect_uri": setup["redirect_uri"],
                                       "code_verifier": setup["code_verifier"]}) + "&code={{VALUE}}"
        return Phase(name, "POST", "/o/token/", {"Authorization": basic(setup["relying_party"]), **form}, body,
                     values=[], mode="consume"), run.mint("mint_codes")
    if name == "password_login":
        cookie, token = csrf_pair(url)
        body = '{"username": "{{VALUE}}", "password": "' + run.password + '"}'
        return Phase(name, "POST", "/api/auth/login", {"Content-Type": "application/json", "X-CSRFToken": token,
                                                       "Cookie": f"csrftoken={cookie}"}, body,
                     values=list(setup["users"]), mode="cycle"), None
    raise BenchError(f"unknown path {name}")


def _while_measuring(run: Run, action: Callable[[], object]) -> tuple[object, float, float]:
    """action()'s result, the CPU seconds the IdP's processes used meanwhile, and the VM's steal share (% of both
    cores: time the hypervisor ran other guests instead of this VM)."""
    cpu_before = sum(instance.cpu_seconds() for instance in run.instances)
    steal_before, ticks_before = procs.cpu_ticks()
    result = action()
    server_cpu = sum(instance.cpu_seconds() for instance in run.instances) - cpu_before
    steal_after, ticks_after = procs.cpu_ticks()
    return result, server_cpu, round(100 * (steal_after - steal_before) / max(1, ticks_after - ticks_before), 1)


def _row(run: Run, name: str, result: dict, warm: dict, *, seconds: float, server_cpu: float, busy_seconds: float,
         steal_percent: float, note: str = "", **extra) -> dict:
    """A row of the table from a load generator's result (wrk's or bench/paced.py's, the same shape); printed."""
    latency = result["latency_us"]
    row = {
        "path": name, "rps": round(result["rps"], 1), "requests": result["requests"],
        "p50_ms": latency["p50"] / 1000, "p90_ms": latency["p90"] / 1000, "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000, "socket_errors": result["socket_errors"], "non2xx": result["non2xx"],
        "statuses": result["statuses"], "problems": problems(result), "warmup_problems": problems(warm),
        "rss_max_mib": run.worker_rss_max(), "seconds": seconds, "target_rps": report.TARGET_RPS.get(name),
        # Of one core: 100 means the IdP kept its pinned core busy the whole time.
        "server_cpu_percent": round(100 * server_cpu / busy_seconds, 1),
        "wrk_cpu_percent": result.get("wrk_cpu_percent"), "steal_percent": steal_percent, **extra,
    }
    row["misses"] = report.verdict(row)
    label = f"{name} at {row['rate']:g}/s, {report.arrivals_label(row)}" if row.get("mode") == "paced" else name
    wrk_cpu = f"wrk CPU {row['wrk_cpu_percent']:>5.1f}%  " if row["wrk_cpu_percent"] is not None else ""
    print(f"  {label + note:<36} {row['rps']:>9,.0f} req/s  p99 {row['p99_ms']:>7.1f} ms  IdP CPU "
          f"{row['server_cpu_percent']:>5.1f}%  {wrk_cpu}steal {row['steal_percent']:>4.1f}%  "
          f"{'; '.join(row['problems'] + row['warmup_problems']) or 'clean'}", flush=True)
    return row


def measure(run: Run, name: str, url: str, load: Load, *, duration: float | None = None, note: str = "") -> dict:
    """Warm-up, then the measured wrk run of one path against `url`; the row of the table."""
    args = run.args
    duration = duration or args.duration
    phase, pool = phase_for(run, name, url)
    warm_values = pool(run.pool_size(args.warmup), f"{name}-warmup") if pool else None
    warm = drive(run.supervisor, url, phase, load, seconds=args.warmup, label=f"{name}-warmup", values=warm_values)
    if name == "authorization_code":
        duration = min(duration, MAX_CODE_SECONDS)
    values = pool(run.pool_size(duration), name) if pool else None
    result, server_cpu, steal = _while_measuring(
        run, lambda: drive(run.supervisor, url, phase, load, seconds=duration, label=name, values=values))
    if name == "client_credentials":
        run.rate_hint = max(200.0, result["rps"])
    # wrk's start-up counts in its duration, and so in the IdP's share of the core.
    return _row(run, name, result, warm, seconds=duration, server_cpu=server_cpu,
                busy_seconds=result["duration_us"] / 1e6, steal_percent=steal, note=note)


def median_run(repeats: list[dict]) -> dict:
    """The run with the median throughput (at a fixed rate: the median p99) stands for the path: this VM's
    neighbours steal a varying share of its cores, so a single run may land on a busy moment. Every run's problems
    count, not only the chosen one's."""
    paced = repeats[0].get("mode") == "paced"
    row = dict(sorted(repeats, key=lambda each: each["p99_ms"] if paced else each["rps"])[len(repeats) // 2])
    row["runs_rps"] = [each["rps"] for each in repeats]
    for key in ("problems", "warmup_problems"):
        row[key] = [problem for each in repeats for problem in each[key]]
    row["socket_errors"] = sum(each["socket_errors"] for each in repeats)
    row["non2xx"] = sum(each["non2xx"] for each in repeats)
    row["misses"] = report.verdict(row)
    return row


def measure_paced(run: Run, name: str, url: str, rate: float) -> dict:
    """The path at a fixed rate over the same connections (bench/paced.py): its latency while carrying `rate`."""
    args = run.args
    phase, _ = phase_for(run, name, url)
    spec = run.supervisor.unique_path(f"{name}-paced") / "phase.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({"method": phase.method, "path": phase.path, "headers": phase.headers,
                                "body": phase.body, "values": phase.values}))
    seconds = max(PACED_MIN_SECONDS, args.duration)
    output, server_cpu, steal = _while_measuring(run, lambda: run.supervisor.run(
        f"paced-{spec.parent.name}", [str(PYTHON), "-m", "bench.paced", "--url", url, "--phase", str(spec),
                                      "--rate", str(rate), "--seconds", str(seconds), "--warmup", str(args.warmup),
                                      "--connections", str(args.connections), "--arrivals", args.paced_arrivals],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cpus=args.wrk_cpus, timeout=20 * (seconds + args.warmup) + 60))
    outcome = json.loads(output.strip().splitlines()[-1])
    # The whole schedule, warm-up included, over its planned length: an estimate of the core's share.
    return _row(run, name, outcome["measured"], outcome["warmup"], seconds=seconds, server_cpu=server_cpu,
                busy_seconds=seconds + args.warmup, steal_percent=steal, mode="paced", rate=rate,
                arrivals=args.paced_arrivals, target_rps=rate)


def toolkit_row(run: Run, url: str) -> dict:
    """Local verification of client-credentials tokens with the toolkit, one process pinned to wrk's core."""
    tokens = [token_request(url, run.setup["service"], {"grant_type": "client_credentials"})["access_token"]
              for _ in range(64)]
    path = run.run_dir / "toolkit-tokens.txt"
    path.write_text("\n".join(tokens) + "\n")
    output = run.supervisor.run(
        "toolkit-verify", [str(PYTHON), "-m", "bench.verify", "--issuer", url, "--audience",
                           run.setup["service_audience"], "--tokens", str(path), "--duration", str(run.args.duration),
                           "--warmup", str(run.args.warmup)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cpus=run.args.wrk_cpus, timeout=run.args.duration + 120)
    result = json.loads(output.strip().splitlines()[-1])
    row = {"path": "toolkit_verify", "rps": result["per_second"], "requests": result["verifications"],
           "p50_ms": result["latency_us"]["p50"] / 1000, "p90_ms": result["latency_us"]["p90"] / 1000,
           "p99_ms": result["latency_us"]["p99"] / 1000, "max_ms": result["latency_us"]["max"] / 1000,
           "socket_errors": 0, "non2xx": 0, "statuses": "", "problems": [], "warmup_problems": [],
           "rss_max_mib": None, "seconds": result["seconds"], "target_rps": report.TARGET_RPS["toolkit_verify"]}
    row["misses"] = report.verdict(row)
    print(f"  {'toolkit_verify':<36} {row['rps']:>9,.0f} tokens/s  p99 {row['p99_ms'] * 1000:.0f} µs", flush=True)
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per path (default 10)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per path (default 3)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1,
                        help="gunicorn worker processes per instance (default 1: one per core, see bench/README.md)")
    parser.add_argument("--threads", type=int, default=8,
                        help="threads per gunicorn worker (default 8, as idp/gunicorn_conf.py)")
    parser.add_argument("--server-cpus", default="0", help="taskset list for gunicorn (default 0)")
    parser.add_argument("--wrk-cpus", default="1", help="taskset list for wrk and the toolkit (default 1)")
    parser.add_argument("--only", nargs="+", choices=PATHS, help="measure only these paths")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measured runs per path; the table shows the median one (default 3)")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process query counts and cProfile")
    parser.add_argument("--profile-requests", type=int, default=200)
    parser.add_argument("--growth", action="store_true",
                        help="also compare 10,000 and 1,000,000 stored tokens, and audit events (bench/stages.py)")
    parser.add_argument("--growth-rows", type=int, default=1_000_000, help="stored access tokens, large case")
    parser.add_argument("--audit-events", type=int, default=1_000_000, help="audit events, large case")
    parser.add_argument("--scale-out", action="store_true",
                        help="also run two instances behind nginx sharing PostgreSQL and Redis (bench/stages.py)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--paced-arrivals", choices=("even", "poisson"), default="even",
                        help="starts of the fixed-rate login run: evenly spaced (default) or random (bench/paced.py)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    results: dict = {"started": started, "command": shlex.join(["python", "-m", "bench.load", *sys.argv[1:]]),
                     "config": {"duration": args.duration, "warmup": args.warmup, "connections": args.connections,
                                "wrk_threads": args.wrk_threads, "workers": args.workers, "threads": args.threads,
                                "repeat": args.repeat, "paced_arrivals": args.paced_arrivals,
                                "server_cpus": args.server_cpus, "wrk_cpus": args.wrk_cpus,
                                "postgresql_pinned": False}}
    VAR.mkdir(parents=True, exist_ok=True)
    # One run at a time: they would share the database idp_bench and the cores.
    lock = (VAR / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("Another benchmark run is in progress (var/bench/.lock); wait for it to finish.", file=sys.stderr)
        return 3
    run_dir = VAR / f"run-{started.replace(':', '').replace('-', '')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(run_dir)
    procs.terminate_on_signals()
    status = 0
    try:
        for tool in ("taskset", "wrk", *(["nginx"] if args.scale_out else [])):
            procs.tool_path(tool)
        if len(os.sched_getaffinity(0)) < 2:
            raise BenchError("the benchmark needs two cores: one for the IdP, one for the load generator")
        results["machine"] = report.machine(procs.postgres_settings(POSTGRES))
        facts = results["machine"]
        print(f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['ram_gib']} GiB, PostgreSQL "
              f"{facts['postgresql']} (runs unpinned: a system service), load average {facts['load_average_before']}"
              f"\nLogs: {run_dir}", flush=True)
        execute(Run(args=args, supervisor=supervisor), results)
    except KeyboardInterrupt:
        results.setdefault("fatal", []).append("interrupted")
        status = 130
    except BenchError as error:
        results.setdefault("fatal", []).append(str(error))
        print(f"\nbench failed: {error}", file=sys.stderr)
        status = 3
    except Exception as error:  # noqa: BLE001 - a bug or a lost database: clean up, say so, exit 3
        traceback.print_exc()
        results.setdefault("fatal", []).append(repr(error))
        status = 3
    finally:
        procs.ignore_signals()
        supervisor.stop_all()
        try:
            procs.database_drop(POSTGRES, DATABASE)
        except Exception as error:  # noqa: BLE001 - report it; the run's numbers are still worth writing down
            print(f"could not drop {DATABASE}: {error}", file=sys.stderr)
        tidy(run_dir)
    results.setdefault("machine", {}).update(load_average_after=procs.load_average())
    if "cpu" in results["machine"]:
        json_path, md_path = report.save(results, VAR)
        print("\n" + report.markdown(results))
        print(f"Results: {json_path}\n         {md_path}")
    problems_found = report.failures(results)
    if problems_found:
        message = report.banner(problems_found)
        print(message)
        print(message, file=sys.stderr)
        status = status or 2
    elif status == 130:
        print("\nInterrupted: every process and the database were removed; the numbers above are partial.")
    return status


def tidy(run_dir: Path) -> None:
    """Remove the spent pools of codes and tokens (their database is gone) and the metrics files; keep the logs."""
    for pattern in ("pool-*.txt", "*/values.txt", "profile-codes.txt", "profile-refresh.txt",
                    "codes-for-user-token.txt", "toolkit-tokens.txt"):
        for path in run_dir.glob(pattern):
            path.unlink()
    for metrics in VAR.glob("prometheus-*"):
        shutil.rmtree(metrics, ignore_errors=True)


def execute(run: Run, results: dict) -> None:
    """Set up the database and the server, measure every path, then the optional stages."""
    from bench import stages

    args, supervisor = run.args, run.supervisor
    procs.database_recreate(POSTGRES, DATABASE)
    port = procs.free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = server_env(issuer, name="manage")
    supervisor.run("migrate", [str(PYTHON), "manage.py", "migrate", "--noinput"], env=env, timeout=600)
    supervisor.run("bootstrap", [str(PYTHON), "manage.py", "bootstrap"], env=env, timeout=300)
    run.seed = SeedHelper(supervisor, env)
    run.password = "bench-" + base64.urlsafe_b64encode(os.urandom(18)).decode()
    run.setup = run.seed.call("setup", users=SIGN_IN_USERS, password=run.password)
    server = start_instance(supervisor, name="idp", issuer=issuer, workers=args.workers, threads=args.threads,
                            cpus=args.server_cpus, port=port)
    run.instances = [server]
    load = Load(connections=args.connections, threads=args.wrk_threads, cpus=args.wrk_cpus)
    print(f"\nMeasuring {server.url}: {args.workers} worker(s) x {args.threads} threads on core {args.server_cpus}, "
          f"wrk on core {args.wrk_cpus}, {args.connections} connections, {args.warmup:g} s warm-up + "
          f"{args.duration:g} s each",
          flush=True)
    rows = results["rows"] = []
    for name in args.only or PATHS:
        repeats = []
        for _ in range(args.repeat):
            repeats.append(toolkit_row(run, server.url) if name == "toolkit_verify"
                           else measure(run, name, server.url, load))
            time.sleep(1)
        rows.append(median_run(repeats))
        if name in report.P99_AT_RATE:
            rate = report.P99_AT_RATE[name]
            rows.append(median_run([measure_paced(run, name, server.url, rate) for _ in range(args.repeat)]))
    results["worker_rss_after_run_mib"] = [round(size, 1) for size in server.worker_rss()]
    if not args.no_profile:
        print("\nProfiling in-process (query counts, medians, cProfile of the token paths)...", flush=True)
        host = f"127.0.0.1:{server.port}"
        results["profile"] = run.seed.call("profile", host=host, setup=run.setup, password=run.password,
                                           requests=args.profile_requests, out_dir=str(run.run_dir), timeout=1800)
        for name, entry in results["profile"].items():
            shares = entry.get("profile", {}).get("shares_percent", {})
            print(f"  {name:<20} {entry['queries']:>3} queries  {entry['median_ms']:>7.2f} ms  "
                  f"{', '.join(f'{label} {share}%' for label, share in shares.items())}")
    if args.growth:
        results["growth"] = stages.growth(run, server, load)
    if args.scale_out:
        supervisor.stop(server.started)
        run.instances = []
        results["scale_out"] = stages.scale_out(run)


if __name__ == "__main__":
    sys.exit(main())
