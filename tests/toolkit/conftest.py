"""A stand-in issuer on loopback (discovery and JWKS over real HTTP, counting fetches) and a token minter."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "https://orders.example.com"


class SigningKey:
    """A private key with the kid and algorithm the stand-in issuer publishes it under."""

    def __init__(self, private_key, *, kid: str, algorithm: str) -> None:
        self.private_key, self.kid, self.algorithm = private_key, kid, algorithm

    @property
    def jwk(self) -> dict:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        return {**algorithm.to_jwk(self.private_key.public_key(), as_dict=True), "kid": self.kid,
                "alg": self.algorithm, "use": "sig"}


def rsa_key(kid: str | None = None) -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                      kid=kid or f"rsa-{uuid.uuid4().hex[:8]}", algorithm="RS256")


def ec_key(kid: str | None = None) -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), kid=kid or f"ec-{uuid.uuid4().hex[:8]}",
                      algorithm="ES256")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StandInIssuer:
    """Serves discovery and a JWKS on 127.0.0.1; tests change `jwks`, `cache_control` and `down` as they go."""

    def __init__(self) -> None:
        self.fetches: dict[str, int] = {}
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.jwks: dict = {"keys": []}
        self.cache_control: str | None = "public, max-age=300"
        self.down = False
        self.token_response: tuple[int, dict] = (400, {"error": "invalid_request"})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.issuer = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def fetch_count(self, path: str = "/jwks.json") -> int:
        return self.fetches.get(path, 0)

    def publish(self, *keys: SigningKey) -> None:
        self.jwks = {"keys": [key.jwk for key in keys]}

    def _handler(self):
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def _answer(self, status: int, document: dict, cache_control: str | None) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if cache_control:
                    self.send_header("Cache-Control", cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                issuer.fetches[self.path] = issuer.fetches.get(self.path, 0) + 1
                if issuer.down:
                    self._answer(503, {"error": "down"}, None)
                elif self.path == "/.well-known/openid-configuration":
                    self._answer(200, {"issuer": issuer.issuer, "jwks_uri": f"{issuer.url}/jwks.json",
                                       "token_endpoint": f"{issuer.url}/token"}, "public, max-age=300")
                elif self.path == "/jwks.json":
                    self._answer(200, issuer.jwks, issuer.cache_control)
                else:
                    self._answer(404, {"error": "not_found"}, None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                issuer.requests.append((self.command, self.path, dict(self.headers), body))
                status, document = issuer.token_response
                self._answer(status, document, "no-store")

        return Handler

    def start(self) -> StandInIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def issuer_key() -> SigningKey:
    return rsa_key("issuer-key-1")


@pytest.fixture
def issuer(issuer_key):
    server = StandInIssuer().start()
    server.publish(issuer_key)
    yield server
    server.stop()


def access_claims(issuer_url: str, **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": issuer_url, "sub": "5b0a3f8e-0000-4000-8000-00000000a11c", "aud": AUDIENCE, "exp": now + 300,
        "iat": now, "nbf": now, "jti": str(uuid.uuid4()), "client_id": "orders-web", "scope": "orders:read openid",
        "roles": ["admin"], "auth_time": now,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


@pytest.fixture
def mint(issuer, issuer_key):
    """mint(key=..., headers={...}, **claim_changes) -> a signed token; a claim changed to None is left out."""

    def make(*, key: SigningKey | None = None, headers: dict | None = None, **changes) -> str:
        key = key or issuer_key
        header = {"typ": "at+jwt", "kid": key.kid, **(headers or {})}
        header = {name: value for name, value in header.items() if value is not None}
        return jwt.encode(access_claims(issuer.issuer, **changes), key.private_key, algorithm=key.algorithm,
                          headers=header)

    return make
