"""What a benchmark run prints and keeps: the machine, the Markdown table against the targets, the JSON file."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from bench.procs import load_average

# Issue 8's targets, per IdP core, PostgreSQL, RS256-2048 keys, 16 connections, zero errors.
TARGET_RPS = {
    "client_credentials": 400,
    "refresh_token": 300,
    "introspection": 1500,
    "jwks": 3000,
    "discovery": 3000,
    "password_login": 30,
    "toolkit_verify": 10_000,
}
P99_LIMIT_MS = 100
# Paths whose p99 is judged at a fixed rate (bench/paced.py), the path's throughput target, instead of with wrk's 16
# busy connections. A password login costs more of the core than its hash (Argon2id at OWASP's minimum, 14-20 ms);
# 16 connections kept busy wait 16 ÷ throughput on average (Little's law), about 400 ms at 40 logins/s, so at
# saturation no code could answer in 100 ms. The saturated row still reports it, and still must reach the rate.
P99_AT_RATE = {"password_login": 30}
# A paced run that finished fewer requests a second than this share of its rate did not keep up with the schedule.
PACED_RATE_KEPT = 0.97
RSS_LIMIT_MIB = 150
BANNER = "!" * 100


def machine(postgres: dict) -> dict:
    """CPU model, cores, memory, kernel and PostgreSQL version of the machine the run is on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown")
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    return {"cpu": model, "cores": os.cpu_count(), "ram_gib": round(memory_kib / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(), "postgresql": postgres["server_version"],
            "postgresql_settings": postgres,
            "load_average_before": load_average()}


def verdict(row: dict) -> list[str]:
    """What keeps a row from meeting issue 8: errors, throughput, p99 latency, worker memory."""
    misses = []
    if row["problems"] or row.get("warmup_problems"):
        misses.append("errors")
    paced = row.get("mode") == "paced"
    target = TARGET_RPS.get(row["path"])
    if paced:
        if row["rps"] < PACED_RATE_KEPT * row["rate"]:
            misses.append("rate")
    elif target is not None and row["rps"] < target:
        misses.append("req/s")
    p99_judged = paced or row["path"] not in P99_AT_RATE
    if p99_judged and row["p99_ms"] is not None and row["p99_ms"] >= P99_LIMIT_MS:
        misses.append("p99")
    if row.get("rss_max_mib") is not None and row["rss_max_mib"] > RSS_LIMIT_MIB:
        misses.append("RSS")
    return misses


_SHARE_KEYS = ("SQL (CursorWrapper._execute)", "RSA signing (jwt.api_jws.encode)", "audit event_record",
               "transaction commit")


def arrivals_label(row: dict) -> str:
    """How a fixed-rate row's requests were started: "paced" (evenly spaced) or "Poisson arrivals"."""
    return "Poisson arrivals" if row.get("arrivals") == "poisson" else "paced"


def _settings(facts: dict) -> str:
    settings = facts.get("postgresql_settings", {})
    return ", ".join(f"{name}={value}" for name, value in settings.items() if name != "server_version")


def _number(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def table(rows: list[dict]) -> str:
    """The Markdown table of a run: one line per path."""
    lines = [
        "| path | req/s | p50 ms | p90 ms | p99 ms | errors / non-2xx | max worker RSS MiB | IdP CPU % | steal % | "
        "target req/s | met? |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        paced = row.get("mode") == "paced"
        target = TARGET_RPS.get(row["path"])
        misses = verdict(row)
        met = "yes" if not misses else "NO (" + ", ".join(misses) + ")"
        if not paced and row["path"] in P99_AT_RATE:
            met += f" (p99 judged at {P99_AT_RATE[row['path']]:g}/s, next row)"
        name = f"{row['path']} at {row['rate']:g}/s, {arrivals_label(row)}" if paced else row["path"]
        target_text = "≥ " + format(target, ",") if target else "—"
        if paced:
            target_text = f"{row['rate']:g}, p99 < {P99_LIMIT_MS}"
        latency_digits = 3 if row["path"] == "toolkit_verify" else 1
        lines.append(
            f"| {name} | {_number(row['rps'], 0)} | {_number(row['p50_ms'], latency_digits)} | "
            f"{_number(row['p90_ms'], latency_digits)} | {_number(row['p99_ms'], latency_digits)} | "
            f"{row['socket_errors']} / {row['non2xx']} | {_number(row.get('rss_max_mib'), 0)} | "
            f"{_number(row.get('server_cpu_percent'), 0)} | {_number(row.get('steal_percent'), 1)} | "
            f"{target_text} | {met} |"
        )
    return "\n".join(lines)


def failures(results: dict) -> list[str]:
    """Every error or non-2xx answer anywhere in the run (the main table, growth, scale-out), one line each."""
    found = []
    for row in results.get("rows", []):
        for problem in row["problems"]:
            found.append(f"{row['path']}: {problem}")
        for problem in row.get("warmup_problems", []):
            found.append(f"{row['path']} (warm-up): {problem}")
    for stage in ("growth", "scale_out"):
        for label, problems in (results.get(stage) or {}).get("problems", {}).items():
            found.extend(f"{stage} {label}: {problem}" for problem in problems)
    return found


def banner(lines: list[str]) -> str:
    body = "\n".join(f"!!  {line}" for line in lines)
    return f"\n{BANNER}\n!!  THIS RUN HAD ERRORS OR NON-2xx RESPONSES: ITS NUMBERS DO NOT COUNT\n{body}\n{BANNER}\n"


def markdown(results: dict) -> str:
    """The whole report in Markdown: machine, set-up, the table, growth and scale-out when they ran."""
    facts = results["machine"]
    config = results["config"]
    out = [
        f"Run {results['started']} — `{results['command']}`",
        "",
        f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['ram_gib']} GiB RAM, Linux {facts['kernel']}, "
        f"Python {facts['python']}, PostgreSQL {facts['postgresql']} ({_settings(facts)}); load average before "
        f"{facts['load_average_before']}, after {facts.get('load_average_after')}.",
        "",
        f"Set-up: gunicorn `idp.wsgi`, {config['workers']} worker(s) x {config.get('threads', 1)} threads "
        f"(idp/gunicorn_conf.py) pinned to core {config['server_cpus']}; "
        f"wrk {config['wrk_threads']} threads, {config['connections']} connections pinned to core "
        f"{config['wrk_cpus']}; PostgreSQL on loopback, not pinned (a system service, it shares both cores); "
        f"RS256-2048 signing key; Argon2id m=7 MiB t=5 p=1; {config['warmup']} s warm-up, then "
        f"{config['duration']} s per run, {config.get('repeat', 1)} runs per path, the median run shown. RSS is the "
        "largest gunicorn worker's after the path's run; IdP CPU % is the gunicorn processes' CPU time over the "
        "run, in percent of one core.",
        "",
    ]
    if facts["load_average_before"][0] >= 1.5:
        out += [f"**The machine was not quiet** (1-minute load average {facts['load_average_before'][0]} before the "
                "run): other work shared the cores, so the figures are lower bounds.", ""]
    if results.get("rows"):
        out += [table(results["rows"]), ""]
    profile = results.get("profile")
    if profile:
        out += ["In-process, one request at a time through Django's WSGI handler (no gunicorn, no HTTP), on the "
                "bench database: SQL queries and median time per request (bench/profiling.py).", "",
                "| path | queries | median ms | time share: SQL / RSA signing / audit event / commits (overlapping) |",
                "| --- | ---: | ---: | --- |"]
        for name, entry in profile.items():
            shares = entry.get("profile", {}).get("shares_percent", {})
            split = " / ".join(f"{shares.get(key, 0):.0f}%" for key in _SHARE_KEYS) if shares else "—"
            out.append(f"| {name} | {entry['queries']} | {entry['median_ms']:.2f} | {split} |")
        out.append("")
        for name, entry in profile.items():
            packages = entry.get("profile", {}).get("own_time_by_package_percent")
            if packages:
                top = ", ".join(f"{package} {share:.0f}%" for package, share in list(packages.items())[:6])
                out.append(f"- {name}, own time under cProfile by package: {top}")
        out.append("")
    growth = results.get("growth")
    if growth:
        out += ["Growth:", ""]
        for name, entry in growth.get("token_paths", {}).items():
            out.append(f"- {name}: {entry['small_rps']:,.0f} req/s with {entry['small_rows']:,} stored access tokens, "
                       f"{entry['large_rps']:,.0f} req/s with {entry['large_rows']:,}: ratio "
                       f"{entry['ratio']:.2f} (p99 {entry['small_p99_ms']:.1f} → {entry['large_p99_ms']:.1f} ms)")
        audit = growth.get("audit")
        if audit:
            out.append(f"- audit admin list, unfiltered: {audit['list_small_ms']:.1f} ms with "
                       f"{audit['small_events']:,} events, {audit['list_large_ms']:.1f} ms with "
                       f"{audit['large_events']:,}: ratio {audit['list_ratio']:.2f}; slowest page at "
                       f"{audit['large_events']:,}: {audit['slowest_page']} {audit['slowest_ms']:.1f} ms "
                       f"(ratio {audit['slowest_ratio']:.2f})")
        out.append("")
    scale = results.get("scale_out")
    if scale:
        out += ["Scale-out (" + scale["note"] + "):", ""]
        for name, entry in scale.get("paths", {}).items():
            out.append(f"- {name}: one instance behind nginx {entry['single_rps']:,.0f} req/s "
                       f"(p99 {entry['single_p99_ms']:.1f} ms), two instances {entry['pair_rps']:,.0f} req/s "
                       f"(p99 {entry['pair_p99_ms']:.1f} ms): ratio {entry['ratio']:.2f}")
        lockout = scale.get("lockout")
        if lockout:
            out.append(f"- shared lockout: {lockout['summary']}")
        out.append("")
    return "\n".join(out)


def save(results: dict, directory: Path) -> tuple[Path, Path]:
    """Write results-<timestamp>.json and .md into `directory`; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"results-{results['started'].replace(':', '').replace('-', '')}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(results) + "\n")
    return json_path, md_path
