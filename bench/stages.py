"""The optional stages of `python -m bench.load`: growth (--growth) and two instances behind nginx (--scale-out).

Growth: the token tables are emptied, filled with 10,000 access-token rows, and client credentials and
introspection are measured; then the table is filled to 1,000,000 rows (bulk SQL; an hour of client-credentials
traffic, most of it expired as before an hourly `tokens prune`) and both are measured again. The audit side calls
bench/audit_events.py with 10,000 and with 1,000,000 events and compares the admin list's median times.

Scale-out: two gunicorn instances, one pinned to each core, share the bench database and REDIS_URL behind Debian's
nginx (round robin) on loopback, with IDP_TRUST_PROXY so the client IP comes from X-Forwarded-For. With two cores
there is no core left for wrk, nginx and PostgreSQL: they run unpinned, and so does the single-instance baseline
(one instance behind its own nginx). Then failed sign-ins through nginx, answered by both instances, lock the
(username, IP) pair for both: the counters live in PostgreSQL (accounts/throttling.py).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
from typing import TYPE_CHECKING

from bench import procs
from bench.calls import csrf_pair, http
from bench.procs import PYTHON, BenchError
from bench.server import DATABASE, POSTGRES, start_instance
from bench.wrk import Load

if TYPE_CHECKING:
    from bench.load import Run
    from bench.server import Instance

GROWTH_PATHS = ("client_credentials", "introspection")
SCALE_PATHS = ("client_credentials", "jwks")
AUDIT_SMALL = 10_000
_AUDIT_LINE = re.compile(r"^(?P<page>\S.*?)\s+(?P<median>\d+\.\d)\s+(?P<max>\d+\.\d)\s+(?P<queries>\d+)$")


def _problems(row: dict) -> list[str]:
    return row["problems"] + [f"warm-up: {problem}" for problem in row["warmup_problems"]]


def growth(run: Run, server: Instance, load: Load) -> dict:
    """Token-path throughput at 10,000 and at --growth-rows stored access tokens, and the audit pages' ratios."""
    from bench.load import measure

    print("\nGrowth: token endpoint with 10,000 and with 1,000,000 stored access tokens", flush=True)
    out: dict = {"token_paths": {}, "problems": {}}
    with_rows = {}
    # Start from empty token tables, so that the small case really holds 10,000 rows.
    procs.execute(POSTGRES, DATABASE, "TRUNCATE oauth2_provider_refreshtoken, oauth2_provider_accesstoken, "
                  "oauth2_provider_idtoken, oauth2_provider_grant, idp_grantcontext CASCADE")
    for rows in (10_000, run.args.growth_rows):
        filled = run.seed.call("fill_access_tokens", total=rows, timeout=1800)
        print(f"  {filled['rows']:,} access-token rows ({filled['seconds']} s to fill and analyze)", flush=True)
        with_rows[rows] = {"rows": filled["rows"]}
        for name in GROWTH_PATHS:
            row = measure(run, name, server.url, load, note=f" ({filled['rows']:,} rows)")
            with_rows[rows][name] = row
            if _problems(row):
                out["problems"][f"{name} at {rows:,} rows"] = _problems(row)
    small, large = with_rows[10_000], with_rows[run.args.growth_rows]
    for name in GROWTH_PATHS:
        out["token_paths"][name] = {
            "small_rows": small["rows"], "large_rows": large["rows"],
            "small_rps": small[name]["rps"], "large_rps": large[name]["rps"],
            "ratio": round(large[name]["rps"] / small[name]["rps"], 3) if small[name]["rps"] else None,
            "small_p99_ms": small[name]["p99_ms"], "large_p99_ms": large[name]["p99_ms"],
        }
    out["audit"] = audit_growth(run)
    return out


def _audit_pages(run: Run, events: int) -> dict[str, float]:
    output = run.supervisor.run(
        f"audit-events-{events}", [str(PYTHON), "bench/audit_events.py", "--events", str(events), "--runs", "3"],
        env={**os.environ}, timeout=3600)
    pages = {}
    for line in output.splitlines():
        match = _AUDIT_LINE.match(line.strip())
        if match:
            pages[match["page"].strip()] = float(match["median"])
    if "list, unfiltered" not in pages:
        raise BenchError(f"bench/audit_events.py printed no page timings:\n{output[-1500:]}")
    return pages


def audit_growth(run: Run) -> dict:
    """The audit admin's median page times at 10,000 and at 1,000,000 events (bench/audit_events.py), as ratios."""
    large_events = run.args.audit_events
    print(f"  audit admin pages with {AUDIT_SMALL:,} and {large_events:,} events (bench/audit_events.py)...",
          flush=True)
    small, large = _audit_pages(run, AUDIT_SMALL), _audit_pages(run, large_events)
    ratios = {page: round(large[page] / small[page], 2) for page in large if small.get(page)}
    slowest = max(large, key=large.get)
    result = {"small_events": AUDIT_SMALL, "large_events": large_events, "pages_small_ms": small,
              "pages_large_ms": large, "ratios": ratios, "list_small_ms": small["list, unfiltered"],
              "list_large_ms": large["list, unfiltered"], "list_ratio": ratios["list, unfiltered"],
              "slowest_page": slowest, "slowest_ms": large[slowest], "slowest_ratio": ratios.get(slowest, 0.0)}
    print(f"  audit list, unfiltered: {result['list_small_ms']} ms → {result['list_large_ms']} ms "
          f"(ratio {result['list_ratio']}); slowest page: {slowest} {large[slowest]} ms", flush=True)
    return result


# --- Scale-out. ---------------------------------------------------------------------------------------------


def nginx_start(run: Run, name: str, upstreams: list[int], port: int | None = None) -> tuple[int, procs.Started]:
    """Debian's nginx on a loopback port, round robin over the given gunicorn ports; returns (port, process)."""
    port = port or procs.free_port()
    prefix = run.run_dir / name
    for sub in ("", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    servers = "".join(f"        server 127.0.0.1:{upstream};\n" for upstream in upstreams)
    temp = prefix / "tmp"
    (prefix / "nginx.conf").write_text(f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    upstream idp {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://idp;
            proxy_set_header Host $http_host;
            # Overwrite, never append: the IdP trusts exactly one proxy (IDP_TRUSTED_PROXY_COUNT=1).
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            add_header X-Bench-Upstream $upstream_addr always;
        }}
    }}
}}
""")
    started = run.supervisor.start(name, [procs.tool_path("nginx"), "-p", str(prefix), "-c",
                                          str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
                                   env={"PATH": "/usr/sbin:/usr/bin:/bin"})
    procs.wait_http_ok(f"http://127.0.0.1:{port}/healthz", timeout=30, watch=started)
    return port, started


def _login(url: str, cookie: str, token: str, username: str, password: str) -> tuple[int, str]:
    status, headers, _ = http(f"{url}/api/auth/login", data=json.dumps({"username": username, "password": password}),
                              headers={"Content-Type": "application/json", "X-CSRFToken": token,
                                       "Cookie": f"csrftoken={cookie}"})
    return status, headers.get("X-Bench-Upstream", "")


def lockout_demo(run: Run, url: str, upstreams: list[str]) -> dict:
    """Failed sign-ins through nginx land on both instances and lock the pair for both; returns the evidence."""
    username, limit = run.setup["lockout_user"], 5  # IDP_LOGIN_USER_IP_FAILURE_LIMIT's default
    cookie, token = csrf_pair(url)
    attempts = []
    for number in range(1, limit + 1):
        status, upstream = _login(url, cookie, token, username, "wrong-" + run.password)
        attempts.append({"attempt": number, "password": "wrong", "status": status, "upstream": upstream})
    for number in range(limit + 1, limit + 3):  # the right password, on each instance in turn
        status, upstream = _login(url, cookie, token, username, run.password)
        attempts.append({"attempt": number, "password": "correct", "status": status, "upstream": upstream})
    control_status, control_upstream = _login(url, cookie, token, run.setup["users"][0], run.password)
    rows = run.seed.call("throttle_rows", username=username)["rows"]
    failed_on = {attempt["upstream"] for attempt in attempts if attempt["password"] == "wrong"}
    refused_on = {attempt["upstream"] for attempt in attempts if attempt["password"] == "correct"
                  and attempt["status"] == 401}
    pair = next((row for row in rows if row["scope"] == "user_ip"), None)
    shared = (failed_on == set(upstreams) and refused_on == set(upstreams) and pair is not None
              and pair["failures"] == limit and pair["locked_until"] is not None and control_status == 200)
    failures = pair["failures"] if pair else None
    locked_until = pair["locked_until"] if pair else None
    summary = (f"{limit} wrong passwords for {username} went to {sorted(failed_on)}; the correct password was then "
               f"refused (401) by {sorted(refused_on)}; the PostgreSQL counter reads failures={failures}, "
               f"locked_until={locked_until}; another user still signs in ({control_status} from "
               f"{control_upstream}): {'SHARED' if shared else 'NOT SHOWN TO BE SHARED'}")
    for attempt in attempts:
        print(f"    attempt {attempt['attempt']}: {attempt['password']:<7} password → {attempt['status']} "
              f"from {attempt['upstream']}")
    print(f"    counters in PostgreSQL: {rows}\n    {summary}", flush=True)
    return {"attempts": attempts, "control": {"status": control_status, "upstream": control_upstream},
            "rows": rows, "shared": shared, "summary": summary}


def _redis_keys(url: str) -> str:
    match = re.match(r"redis://([^:/]+):(\d+)/(\d+)", url)
    cli = shutil.which("redis-cli")
    if not match or not cli:
        return "unknown"
    result = subprocess.run([cli, "-h", match[1], "-p", match[2], "-n", match[3], "dbsize"],  # noqa: S603
                            capture_output=True, text=True, timeout=10, check=False)
    return result.stdout.strip() or result.stderr.strip()


def scale_out(run: Run) -> dict:
    """Throughput of one instance and of two behind nginx, and the evidence that their lockouts are shared."""
    from bench.load import measure

    args = run.args
    print("\nScale-out: two instances (core 0, core 1) behind nginx vs one; wrk, nginx and PostgreSQL unpinned",
          flush=True)
    pair_nginx_port = procs.free_port()
    issuer = f"http://127.0.0.1:{pair_nginx_port}"  # the address clients use: nginx in front of both
    extra = {"IDP_TRUST_PROXY": "1", "REDIS_URL": args.redis_url}
    sizes = {"workers": args.workers, "threads": args.threads}
    first = start_instance(run.supervisor, name="idp-a", issuer=issuer, **sizes, cpus="0", extra=extra)
    second = start_instance(run.supervisor, name="idp-b", issuer=issuer, **sizes, cpus="1", extra=extra)
    single_port, _ = nginx_start(run, "nginx-single", [first.port])
    nginx_start(run, "nginx-pair", [first.port, second.port], port=pair_nginx_port)
    load = Load(connections=args.connections, threads=args.wrk_threads, cpus=None)
    out: dict = {"note": "2 cores: one instance per core; wrk, nginx and PostgreSQL unpinned, competing with both",
                 "paths": {}, "problems": {}, "redis_url": args.redis_url}
    for name in SCALE_PATHS:
        run.instances = [first]
        single = measure(run, name, f"http://127.0.0.1:{single_port}", load, note=" (one instance)")
        run.instances = [first, second]
        pair = measure(run, name, f"http://127.0.0.1:{pair_nginx_port}", load, note=" (two instances)")
        for label, row in (("one instance", single), ("two instances", pair)):
            if _problems(row):
                out["problems"][f"{name}, {label}"] = _problems(row)
        out["paths"][name] = {"single_rps": single["rps"], "pair_rps": pair["rps"],
                              "single_p99_ms": single["p99_ms"], "pair_p99_ms": pair["p99_ms"],
                              "ratio": round(pair["rps"] / single["rps"], 3) if single["rps"] else None,
                              "pair_rss_max_mib": pair["rss_max_mib"]}
    print("  shared lockout through nginx:", flush=True)
    out["lockout"] = lockout_demo(run, f"http://127.0.0.1:{pair_nginx_port}",
                                  [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"])
    if not out["lockout"]["shared"]:
        out["problems"]["lockout"] = ["the lockout was not shown to be shared by both instances"]
    out["redis_dbsize"] = _redis_keys(args.redis_url)
    out["redis_note"] = ("REDIS_URL is set on both instances (Django's cache); lockout and throttle counters live in "
                         "PostgreSQL, and no hot path uses the cache")
    return out
