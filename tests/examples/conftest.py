"""The whole demo stack, started once per test session on free loopback ports, as `make demo` starts it."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from examples.demo.login import user_tokens
from examples.demo.processes import run_checked
from examples.demo.stack import ORDERS_AUDIENCE, REPO, WEB_SCOPES, Ports, Stack, gateway_unavailable_reason

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """IdP, orders, inventory and (when Debian's apache2 and mod_auth_openidc are installed) the gateway."""
    idp, gateway, gateway_jwks, orders, inventory = _free_ports(5)
    demo = Stack(var_dir=tmp_path_factory.mktemp("demo"), with_gateway=gateway_unavailable_reason() is None,
                 ports=Ports(idp=idp, gateway=gateway, gateway_jwks=gateway_jwks, orders=orders, inventory=inventory),
                 startup_timeout=60,
                 # IdP workers see a rotated key within a second (the default is five).
                 idp_settings={"IDP_KEY_CACHE_SECONDS": "1"})
    with demo:
        yield demo


@pytest.fixture(scope="session")
def discovery(stack) -> dict:
    return requests.get(f"{stack.issuer}/.well-known/openid-configuration", timeout=10).json()


def _sign_in(stack, username: str, password: str, resource: str = ORDERS_AUDIENCE) -> dict:
    return user_tokens(issuer=stack.issuer, client_id=stack.accounts.web_client_id,
                       client_secret=stack.accounts.web_client_secret, redirect_uri=stack.web_redirect_uri,
                       username=username, password=password, scope=" ".join(WEB_SCOPES), resource=resource)


@pytest.fixture(scope="session")
def alice(stack) -> dict:
    """alice's token response for orders; alice has the role admin."""
    return _sign_in(stack, "alice", stack.accounts.alice_password)


@pytest.fixture(scope="session")
def bob(stack) -> dict:
    """bob's token response for orders; bob has no role."""
    return _sign_in(stack, "bob", stack.accounts.bob_password)


@pytest.fixture(scope="session")
def sign_in(stack):
    def sign(username: str, resource: str) -> dict:
        password = {"alice": stack.accounts.alice_password, "bob": stack.accounts.bob_password}[username]
        return _sign_in(stack, username, password, resource)

    return sign


@pytest.fixture(scope="session")
def service_token(stack):
    """service_token(audience) -> the orders service's own client-credentials token, straight from the IdP."""

    def issue(audience: str) -> str:
        response = requests.post(f"{stack.issuer}/o/token/", timeout=10,
                                 auth=(stack.accounts.orders_client_id, stack.accounts.orders_client_secret),
                                 data={"grant_type": "client_credentials", "resource": audience})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    return issue


_MINT = """
import json, os
import jwt
from idp.keys import active_signing_key
key = active_signing_key()
headers = {"kid": key.kid, **json.loads(os.environ["MINT_HEADERS"])}
print("MINTED " + jwt.encode(json.loads(os.environ["MINT_CLAIMS"]), key.private_key, algorithm=key.algorithm,
                             headers=headers))
"""


@pytest.fixture(scope="session")
def mint_with_idp_key(stack):
    """mint_with_idp_key(claims, headers) -> a token signed by the IdP's own active key, with claims it never issues
    (already expired, the wrong typ ...), made inside the IdP's process environment."""

    def mint(claims: dict, headers: dict) -> str:
        output = run_checked([stack.python, "manage.py", "shell", "-c", _MINT], cwd=REPO, env={
            **stack.idp_env(), "MINT_CLAIMS": json.dumps(claims), "MINT_HEADERS": json.dumps(headers)})
        return next(line for line in output.splitlines() if line.startswith("MINTED ")).removeprefix("MINTED ")

    return mint


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
