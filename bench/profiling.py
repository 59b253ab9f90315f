"""Where a request's time goes: every benchmarked path run in-process through Django's WSGI stack, counted in SQL
queries and milliseconds, and the token paths (client credentials, refresh, code exchange, introspection,
userinfo) profiled with cProfile.

Runs inside bench/seed.py's process (Django set up on the bench database) while the gunicorn workers are idle.
Timings here are one process on whatever core it runs on, without HTTP parsing by gunicorn: they explain the
throughput wrk measures, they are not that throughput.
"""

from __future__ import annotations

import base64
import cProfile
import io
import json
import pstats
import statistics
import time
from collections.abc import Callable
from pathlib import Path

FORM = "application/x-www-form-urlencoded"
PROFILED = ("client_credentials", "refresh_token", "authorization_code", "introspection", "userinfo")


def _basic(client: dict) -> str:
    # RFC 6749 §2.3.1: the id and secret are form-encoded before Base64; both are URL-safe already.
    raw = f"{client['client_id']}:{client['client_secret']}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _requests(http, setup: dict, password: str, codes: list[str], refresh_tokens: list[str]) -> dict[str, Callable]:
    from urllib.parse import urlencode

    from bench.seed import CODE_VERIFIER, REDIRECT_URI

    service, relying_party = _basic(setup["service"]), _basic(setup["relying_party"])
    # One user access token from a real code exchange, for userinfo and introspection.
    exchanged = http.post("/o/token/", urlencode({"grant_type": "authorization_code", "code": codes.pop(),
                                                  "redirect_uri": REDIRECT_URI, "code_verifier": CODE_VERIFIER}),
                          content_type=FORM, HTTP_AUTHORIZATION=relying_party)
    assert exchanged.status_code == 200, exchanged.content
    access_token = exchanged.json()["access_token"]
    users = iter(setup["users"] * 1000)

    def token(body: dict, authorization: str) -> Callable:
        return lambda: http.post("/o/token/", urlencode(body() if callable(body) else body), content_type=FORM,
                                 HTTP_AUTHORIZATION=authorization)

    return {
        "discovery": lambda: http.get("/.well-known/openid-configuration"),
        "jwks": lambda: http.get("/.well-known/jwks.json"),
        "client_credentials": token({"grant_type": "client_credentials"}, service),
        "introspection": lambda: http.post("/o/introspect/", urlencode({"token": access_token}), content_type=FORM,
                                           HTTP_AUTHORIZATION=relying_party),
        "userinfo": lambda: http.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access_token}"),
        "refresh_token": token(lambda: {"grant_type": "refresh_token", "refresh_token": refresh_tokens.pop()},
                               relying_party),
        "authorization_code": token(lambda: {"grant_type": "authorization_code", "code": codes.pop(),
                                             "redirect_uri": REDIRECT_URI, "code_verifier": CODE_VERIFIER},
                                    relying_party),
        "password_login": lambda: http.post("/api/auth/login", json.dumps({"username": next(users),
                                                                           "password": password}),
                                            content_type="application/json"),
    }


def _recorder(statements: list[str]) -> Callable:
    def record(execute, sql, params, many, context):
        statements.append(" ".join(sql.split())[:200])
        return execute(sql, params, many, context)

    return record


def _top(profile: cProfile.Profile, sort: str, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()


def _shares(profile: cProfile.Profile, total: float) -> dict[str, float]:
    """Share of the wall time spent under a few functions that explain most of a token request."""
    watched = {
        "SQL (CursorWrapper._execute)": ("utils.py", "_execute"),
        "RSA signing (jwt.api_jws.encode)": ("api_jws.py", "encode"),
        "JWT decoding (jwt.api_jwt.decode_complete)": ("api_jwt.py", "decode_complete"),
        "audit event_record": ("services.py", "event_record"),
        "transaction commit": ("base.py", "commit"),
        "metrics middleware (prometheus files)": ("metrics.py", "request_observe"),
        "password or client-secret hasher (hashers.py verify)": ("hashers.py", "verify"),
    }
    stats = pstats.Stats(profile).stats
    shares = {}
    for label, (filename, function) in watched.items():
        cumulative = sum(entry[3] for (file, _line, name), entry in stats.items()
                         if file.endswith(filename) and name == function)
        if cumulative:
            shares[label] = round(100 * cumulative / total, 1)
    return shares


def _package(filename: str) -> str:
    """Who owns a profiled function: our app, a library (django split into django.db and the rest), or Python."""
    if "site-packages/" in filename:
        parts = filename.split("site-packages/", 1)[1].split("/")
        if parts[0] == "django":
            return "django.db (ORM, SQL compiling)" if parts[1] == "db" else "django (other)"
        if parts[0] == "psycopg":
            return "psycopg (incl. waiting for PostgreSQL)"
        return parts[0]
    for app in ("idp", "accounts", "clients", "audit"):
        if f"/{app}/" in filename and "/lib/python" not in filename:
            return f"{app}/ (ours)"
    return "Python (stdlib, builtins)"


def _by_package(profile: cProfile.Profile, total: float) -> dict[str, float]:
    """Share of the wall time spent in each package's own code (cProfile's tottime), largest first."""
    owned: dict[str, float] = {}
    for (filename, _line, _name), entry in pstats.Stats(profile).stats.items():
        owned[_package(filename)] = owned.get(_package(filename), 0.0) + entry[2]
    ranked = sorted(owned.items(), key=lambda item: -item[1])
    return {name: round(100 * seconds / total, 1) for name, seconds in ranked if seconds / total >= 0.01}


def run(*, host: str, setup: dict, password: str, requests: int, out_dir: str) -> dict:
    """Query counts and in-process median milliseconds for every path; cProfile reports for the token paths."""
    from django.db import connection
    from django.test import Client

    from bench.seed import mint_codes, mint_refresh_tokens

    out = Path(out_dir)
    codes_file, refresh_file = out / "profile-codes.txt", out / "profile-refresh.txt"
    mint_codes(count=3 * requests + 20, path=str(codes_file))
    mint_refresh_tokens(count=3 * requests + 20, path=str(refresh_file))
    codes = codes_file.read_text().split()
    refresh_tokens = refresh_file.read_text().split()
    http = Client(HTTP_HOST=host)
    calls = _requests(http, setup, password, codes, refresh_tokens)
    report = {}
    for name, call in calls.items():
        for _ in range(3):
            assert call().status_code == 200, name
        statements: list[str] = []
        # A wrapper, not CaptureQueriesContext: Django clears connection.queries when each request starts.
        with connection.execute_wrapper(_recorder(statements)):
            response = call()
        assert response.status_code == 200, (name, response.content[:300])
        count = requests if name != "password_login" else max(10, requests // 10)
        timings = []
        for _ in range(count):
            started = time.perf_counter()
            call()
            timings.append((time.perf_counter() - started) * 1000)
        entry = {"queries": len(statements), "sql": statements,
                 "median_ms": round(statistics.median(timings), 2)}
        if name in PROFILED:
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            for _ in range(requests):
                call()
            profile.disable()
            total = time.perf_counter() - started
            text = (f"{name}: {requests} requests in-process under cProfile, {1000 * total / requests:.2f} ms "
                    f"each\n\n--- by cumulative time ---\n{_top(profile, 'cumulative', 45)}"
                    f"\n--- by own time ---\n{_top(profile, 'tottime', 25)}")
            (out / f"profile-{name}.txt").write_text(text)
            profile.dump_stats(str(out / f"profile-{name}.pstats"))
            entry["profile"] = {"file": str(out / f"profile-{name}.txt"), "ms_under_profiler": round(
                1000 * total / requests, 2), "shares_percent": _shares(profile, total),
                "own_time_by_package_percent": _by_package(profile, total)}
        report[name] = entry
    return report
