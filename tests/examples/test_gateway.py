"""End to end through the Apache gateway (mod_auth_openidc): it validates every token locally against the IdP's JWKS
before forwarding; the services validate again and enforce roles."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from examples.demo.stack import INVENTORY_AUDIENCE, ORDERS_AUDIENCE, gateway_unavailable_reason
from tests.examples.conftest import bearer

pytestmark = pytest.mark.skipif(gateway_unavailable_reason() is not None,
                                reason=f"No gateway here: {gateway_unavailable_reason()}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _get(stack, path: str, token: str | None = None) -> requests.Response:
    return requests.get(f"{stack.gateway_url}{path}", headers=bearer(token) if token else {}, timeout=10)


def _refused_at_the_gateway(response: requests.Response) -> None:
    assert response.status_code == 401, response.text[:300]
    assert response.headers["Server"] == "Apache"  # answered by the gateway; nothing reached the service
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def _refused_by_the_service(response: requests.Response, description: str) -> None:
    assert response.status_code == 401, response.text[:300]
    assert response.headers["Server"] == "gunicorn"
    assert f'error_description="{description}"' in response.headers["WWW-Authenticate"]


@pytest.fixture(scope="module")
def claims(alice) -> dict:
    return jwt.decode(alice["access_token"], options={"verify_signature": False})


@pytest.fixture(scope="module")
def kid(alice) -> str:
    return jwt.get_unverified_header(alice["access_token"])["kid"]


def test_a_valid_token_passes_the_gateway_and_reaches_the_service(stack, alice, claims):
    response = _get(stack, "/orders/profile", alice["access_token"])
    assert response.status_code == 200
    assert response.headers["Server"] == "gunicorn"
    assert response.json()["sub"] == claims["sub"]


def test_admin_reaches_the_admin_endpoint_through_the_gateway(stack, alice):
    assert _get(stack, "/orders/admin/orders", alice["access_token"]).status_code == 200


def test_a_request_without_a_token_gets_401_at_the_gateway(stack):
    response = _get(stack, "/orders/profile")
    _refused_at_the_gateway(response)
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_a_forged_token_gets_401_at_the_gateway(stack, claims, kid):
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({**claims, "jti": str(uuid.uuid4())}, attacker, algorithm="RS256",
                        headers={"typ": "at+jwt", "kid": kid})
    response = _get(stack, "/orders/profile", forged)
    _refused_at_the_gateway(response)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_alg_none_and_hs256_keyed_with_the_public_key_get_401_at_the_gateway(stack, claims, kid):
    jwks = requests.get(f"{stack.issuer}/.well-known/jwks.json", timeout=10).json()
    public_key = jwt.PyJWK(next(key for key in jwks["keys"] if key["kid"] == kid)).key
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    unsigned = _compact({"alg": "none", "typ": "at+jwt", "kid": kid}, claims) + "."
    signing_input = _compact({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims)
    hs256 = f"{signing_input}.{_b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"
    _refused_at_the_gateway(_get(stack, "/orders/profile", unsigned))
    _refused_at_the_gateway(_get(stack, "/orders/profile", hs256))


def test_an_expired_token_signed_by_the_idp_gets_401_at_the_gateway(stack, claims, mint_with_idp_key):
    now = int(time.time())
    expired = mint_with_idp_key({**claims, "jti": str(uuid.uuid4()), "iat": now - 900, "nbf": now - 900,
                                 "exp": now - 600}, {"typ": "at+jwt"})
    _refused_at_the_gateway(_get(stack, "/orders/profile", expired))


def test_a_token_for_another_audience_gets_401_at_the_gateway(stack, alice, sign_in, service_token):
    # alice's token is for orders; presented to inventory it is refused by the gateway's `Require claim aud`.
    response = _get(stack, "/inventory/profile", alice["access_token"])
    _refused_at_the_gateway(response)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token is not for this service"')
    _refused_at_the_gateway(_get(stack, "/orders/profile", service_token(INVENTORY_AUDIENCE)))
    assert _get(stack, "/inventory/profile", sign_in("alice", INVENTORY_AUDIENCE)["access_token"]).status_code == 200


def test_a_token_from_another_issuer_gets_401_at_the_gateway(stack, claims, mint_with_idp_key):
    foreign = mint_with_idp_key({**claims, "iss": "https://evil.example.com"}, {"typ": "at+jwt"})
    _refused_at_the_gateway(_get(stack, "/orders/profile", foreign))


def test_a_user_without_the_role_gets_403_from_the_service_behind_the_gateway(stack, bob):
    response = _get(stack, "/orders/admin/orders", bob["access_token"])
    assert response.status_code == 403
    assert response.headers["Server"] == "gunicorn"
    assert response.json() == {"detail": "This request needs the role admin."}


def test_a_request_straight_to_the_service_without_a_token_gets_401_there_too(stack):
    response = requests.get(f"{stack.orders_url}/profile", timeout=10)
    assert response.status_code == 401
    assert response.headers["Server"] == "gunicorn"


def test_what_the_gateway_does_not_check_the_service_refuses(stack, claims, mint_with_idp_key, alice):
    # mod_auth_openidc 2.4.12 checks signature, exp and (by `Require claim`) iss and aud, but neither the RFC 9068
    # `typ` nor `nbf` nor the required claims: the toolkit in each service does, so such tokens still get 401.
    now = int(time.time())
    id_token_typed = mint_with_idp_key({**claims, "jti": str(uuid.uuid4())}, {"typ": "JWT"})
    not_yet_valid = mint_with_idp_key({**claims, "jti": str(uuid.uuid4()), "nbf": now + 600}, {"typ": "at+jwt"})
    without_client_id = mint_with_idp_key({name: value for name, value in claims.items() if name != "client_id"},
                                          {"typ": "at+jwt"})
    _refused_by_the_service(_get(stack, "/orders/profile", id_token_typed), "The token is not an access token.")
    _refused_by_the_service(_get(stack, "/orders/profile", not_yet_valid), "The access token is not valid yet.")
    _refused_by_the_service(_get(stack, "/orders/profile", without_client_id),
                            "The access token has no client_id claim.")


def test_an_id_token_gets_401_at_the_gateway(stack, alice):
    # Its `aud` is the web app's client_id, never a service's audience.
    _refused_at_the_gateway(_get(stack, "/orders/profile", alice["id_token"]))


def test_paths_outside_the_two_routes_are_refused(stack, alice):
    assert _get(stack, "/admin/", alice["access_token"]).status_code == 403
    assert _get(stack, "/o/token/", alice["access_token"]).status_code == 403


def test_orders_calls_inventory_through_its_own_token_behind_the_gateway(stack, alice):
    response = _get(stack, "/orders/orders/1/stock", alice["access_token"])
    assert response.status_code == 200
    assert response.json()["stock"]["caller"]["client_id"] == stack.accounts.orders_client_id


def test_service_token_reaches_inventory_through_the_gateway_but_not_its_admin_view(stack, service_token):
    token = service_token(INVENTORY_AUDIENCE)
    assert _get(stack, "/inventory/stock/SKU-1", token).json()["quantity"] == 12
    response = _get(stack, "/inventory/admin/stock", token)
    assert response.status_code == 403
    assert response.headers["Server"] == "gunicorn"


def test_in_steady_state_neither_gateway_nor_services_ask_the_idp_per_request(stack, alice):
    assert _get(stack, "/orders/orders/1/stock", alice["access_token"]).status_code == 200  # every cache is warm
    log = stack.logs / "idp.log"
    before = log.read_text()
    for _ in range(15):
        assert _get(stack, "/orders/profile", alice["access_token"]).status_code == 200
        assert _get(stack, "/orders/orders/1/stock", alice["access_token"]).status_code == 200
    time.sleep(0.5)  # let the IdP's access log catch up
    new_lines = log.read_text()[len(before):]
    assert "GET /.well-known/jwks.json" not in new_lines
    assert "POST /o/token/" not in new_lines  # orders' own token is cached too


def test_after_a_key_rotation_new_tokens_pass_the_gateway_and_the_service(stack, sign_in, alice):
    old_kid = jwt.get_unverified_header(alice["access_token"])["kid"]
    # `keys rotate` run once the next key has been published for its lead time (IDP_JWKS_MAX_AGE and more): the
    # key it promotes has been in the JWKS, and so in every verifier's cache, all along.
    stack.manage("shell", "-c", "from django.utils import timezone; from idp.keys import next_key_lead_time, "
                                "signing_key_rotate; "
                                "assert signing_key_rotate(now=timezone.now() + next_key_lead_time()).promoted")
    for _ in range(10):  # each IdP worker re-reads its keys within IDP_KEY_CACHE_SECONDS (1 s here)
        fresh = sign_in("alice", ORDERS_AUDIENCE)["access_token"]
        if jwt.get_unverified_header(fresh)["kid"] != old_kid:
            break
        time.sleep(0.5)
    assert jwt.get_unverified_header(fresh)["kid"] != old_kid
    assert _get(stack, "/orders/profile", fresh).status_code == 200
    # Tokens signed before the rotation stay valid: the retired key is still published.
    assert _get(stack, "/orders/profile", alice["access_token"]).status_code == 200
