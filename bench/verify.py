"""Local token verification in the resource-server toolkit: tokens per second on one core, and each one's latency.

    taskset -c 1 .venv/bin/python -m bench.verify --issuer URL --audience AUD --tokens FILE --duration 10

Fetches the issuer's JWKS once (as a service does at start-up), then validates the tokens in FILE round and round
with `TokenValidator.validate` in one thread for `--duration` seconds, timing each call. Prints one JSON line. Every
token must validate: a refusal ends the run with its reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _percentile(sorted_values: list[int], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--tokens", required=True, type=Path)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=1)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "toolkit"))
    import jwt
    from idp_resource_server import JwksCache, TokenValidator

    tokens = args.tokens.read_text().split()
    cache = JwksCache(args.issuer)
    cache.key(jwt.get_unverified_header(tokens[0])["kid"])  # preload: the only request to the IdP
    validator = TokenValidator(args.issuer, args.audience, jwks_cache=cache)
    clock = time.perf_counter_ns
    deadline = time.monotonic() + args.warmup
    while time.monotonic() < deadline:
        for token in tokens:
            validator.validate(token)
    timings: list[int] = []
    started = clock()
    end = started + int(args.duration * 1e9)
    while clock() < end:
        for token in tokens:
            before = clock()
            validator.validate(token)
            timings.append(clock() - before)
    elapsed = (clock() - started) / 1e9
    timings.sort()
    print(json.dumps({
        "verifications": len(timings), "seconds": round(elapsed, 3),
        "per_second": round(len(timings) / elapsed, 1),
        "latency_us": {"p50": _percentile(timings, 0.5) / 1000, "p90": _percentile(timings, 0.9) / 1000,
                       "p99": _percentile(timings, 0.99) / 1000, "max": timings[-1] / 1000},
        "distinct_tokens": len(tokens),
    }))


if __name__ == "__main__":
    main()
