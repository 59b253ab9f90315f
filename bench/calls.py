"""The harness's own HTTP calls (set-up and evidence only, never measured): tokens, CSRF pairs, sign-ins."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from bench.procs import BenchError

FORM = "application/x-www-form-urlencoded"


def basic(client: dict) -> str:
    # RFC 6749 §2.3.1: id and secret form-encoded, joined by a colon, Base64-encoded.
    raw = f"{urllib.parse.quote(client['client_id'])}:{urllib.parse.quote(client['client_secret'])}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def http(url: str, *, data: dict | str | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """One request; returns (status, headers, body) without raising for 4xx/5xx."""
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data.encode() if data else None
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback http only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def token_request(url: str, client: dict, data: dict) -> dict:
    status, _, body = http(f"{url}/o/token/", data=data, headers={"Authorization": basic(client),
                                                                  "Content-Type": FORM})
    if status != 200:
        raise BenchError(f"token request {data.get('grant_type')} answered {status}: {body[:300]!r}")
    return json.loads(body)


def csrf_pair(url: str) -> tuple[str, str]:
    """A CSRF cookie value and its matching token from GET /api/auth/csrf."""
    status, headers, body = http(f"{url}/api/auth/csrf")
    cookie = headers.get("Set-Cookie", "")
    if status != 200 or "csrftoken=" not in cookie:
        raise BenchError(f"GET /api/auth/csrf answered {status} without a CSRF cookie")
    return cookie.split("csrftoken=", 1)[1].split(";", 1)[0], json.loads(body)["csrfToken"]
