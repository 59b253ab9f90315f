"""The example services on their own: every request needs a token, admins only under /admin, and orders calls
inventory with its own client-credentials token and, for its caller, with an exchanged one."""

import jwt
import pytest
import requests

from examples.demo.stack import INVENTORY_AUDIENCE, ORDERS_AUDIENCE
from tests.examples.conftest import TOKEN_EXCHANGE, bearer


@pytest.mark.parametrize("service, path", [("orders", "/profile"), ("orders", "/admin/orders"),
                                           ("orders", "/orders/1/stock"), ("inventory", "/profile"),
                                           ("inventory", "/stock/SKU-1"), ("inventory", "/admin/stock")])
def test_a_request_straight_to_a_service_without_a_token_gets_401_there(stack, service, path):
    response = requests.get(f"{getattr(stack, f'{service}_url')}{path}", timeout=10)
    assert response.status_code == 401
    assert response.headers["Server"] == "gunicorn"
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{service}"'
    assert response.json() == {"error_description": "An access token is required."}


def test_health_check_needs_no_token(stack):
    assert requests.get(f"{stack.orders_url}/healthz", timeout=10).json() == {"status": "ok"}


def test_signed_in_user_sees_their_profile(stack, alice):
    response = requests.get(f"{stack.orders_url}/profile", headers=bearer(alice["access_token"]), timeout=10)
    assert response.status_code == 200
    claims = jwt.decode(alice["access_token"], options={"verify_signature": False})
    assert response.json() == {"sub": claims["sub"], "jti": claims["jti"], "client_id": stack.accounts.web_client_id,
                               "act": None, "aud": ORDERS_AUDIENCE, "roles": ["admin"],
                               "scope": ["inventory:read", "openid", "orders:read"]}


def test_admin_reaches_the_admin_endpoint(stack, alice):
    response = requests.get(f"{stack.orders_url}/admin/orders", headers=bearer(alice["access_token"]), timeout=10)
    assert response.status_code == 200
    assert [order["id"] for order in response.json()["orders"]] == [1, 2, 3]


def test_user_without_the_admin_role_gets_403_from_the_service(stack, bob):
    response = requests.get(f"{stack.orders_url}/admin/orders", headers=bearer(bob["access_token"]), timeout=10)
    assert response.status_code == 403
    assert response.json() == {"detail": "This request needs the role admin."}
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="orders", error="insufficient_scope"')


def test_id_token_is_refused_as_an_access_token_by_the_service(stack, alice):
    response = requests.get(f"{stack.orders_url}/profile", headers=bearer(alice["id_token"]), timeout=10)
    assert response.status_code == 401
    assert "The token is not an access token." in response.headers["WWW-Authenticate"]


def test_token_for_orders_is_refused_by_inventory(stack, alice):
    response = requests.get(f"{stack.inventory_url}/profile", headers=bearer(alice["access_token"]), timeout=10)
    assert response.status_code == 401
    assert "another audience" in response.headers["WWW-Authenticate"]


def test_orders_asks_inventory_with_its_own_client_credentials_token_and_reuses_it(stack, alice):
    answers = [requests.get(f"{stack.orders_url}/orders/1/stock", headers=bearer(alice["access_token"]), timeout=10)
               for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    body = answers[0].json()
    assert body["order"] == {"id": 1, "sku": "SKU-1", "quantity": 2}
    assert body["stock"]["quantity"] == 12
    caller = body["stock"]["caller"]
    # Inventory saw orders itself, not alice: a client-credentials token (RFC 9068 §2.2: sub is the client).
    assert caller["sub"] == caller["client_id"] == stack.accounts.orders_client_id
    assert caller["aud"] == INVENTORY_AUDIENCE
    assert caller["act"] is None
    # One token, cached by the toolkit's TokenClient until shortly before it expires.
    assert len({answer.json()["stock"]["caller"]["jti"] for answer in answers}) == 1


def test_stock_of_an_order_inventory_does_not_know_is_404(stack, alice):
    response = requests.get(f"{stack.orders_url}/orders/3/stock", headers=bearer(alice["access_token"]), timeout=10)
    assert response.status_code == 404
    assert response.json() == {"detail": "Inventory answered 404: No stock record for SKU-9."}


def test_service_token_reads_stock_but_not_the_admin_view(stack, service_token):
    token = service_token(INVENTORY_AUDIENCE)
    assert requests.get(f"{stack.inventory_url}/stock/SKU-3", headers=bearer(token), timeout=10).json()[
        "quantity"] == 140
    assert requests.get(f"{stack.inventory_url}/admin/stock", headers=bearer(token), timeout=10).status_code == 403


@pytest.fixture
def token_exchange(discovery):
    if TOKEN_EXCHANGE not in discovery["grant_types_supported"]:
        pytest.skip("The IdP does not offer RFC 8693 token exchange yet.")


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_orders_asks_inventory_on_behalf_of_its_caller_with_an_exchanged_token(stack, token_exchange, alice, bob,
                                                                               who):
    tokens = {"alice": alice, "bob": bob}[who]
    response = requests.get(f"{stack.orders_url}/orders/2/stock-as-user", headers=bearer(tokens["access_token"]),
                            timeout=10)
    assert response.status_code == 200, response.text
    caller = response.json()["stock"]["caller"]
    subject = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    # RFC 8693 §4.1: the same subject, roles and (never wider) scopes, with orders named as the actor.
    assert caller["sub"] == subject["sub"]
    assert caller["act"] == stack.accounts.orders_client_id
    assert caller["aud"] == INVENTORY_AUDIENCE
    assert caller["roles"] == sorted(subject["roles"])
    assert set(caller["scope"]) <= set(subject["scope"].split())


def test_orders_may_not_exchange_a_token_outside_its_policy(stack, token_exchange, sign_in):
    # The admin policy lets orders trade tokens addressed to orders for inventory tokens, not the other way round.
    inventory_token = sign_in("alice", INVENTORY_AUDIENCE)["access_token"]
    response = requests.post(f"{stack.issuer}/o/token/", timeout=10,
                             auth=(stack.accounts.orders_client_id, stack.accounts.orders_client_secret),
                             data={"grant_type": TOKEN_EXCHANGE, "subject_token": inventory_token,
                                   "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                                   "audience": ORDERS_AUDIENCE})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_a_revoked_token_still_passes_local_validation_but_cannot_be_exchanged(stack, token_exchange, sign_in):
    token = sign_in("bob", ORDERS_AUDIENCE)["access_token"]
    revoked = requests.post(f"{stack.issuer}/o/revoke/", timeout=10, data={"token": token},
                            auth=(stack.accounts.web_client_id, stack.accounts.web_client_secret))
    assert revoked.status_code == 200
    # Local validation cannot know about revocation (keep access tokens short-lived); the IdP, asked to exchange the
    # token, does, and orders reports the refusal as a bad gateway.
    assert requests.get(f"{stack.orders_url}/profile", headers=bearer(token), timeout=10).status_code == 200
    response = requests.get(f"{stack.orders_url}/orders/1/stock-as-user", headers=bearer(token), timeout=10)
    assert response.status_code == 502
    assert response.json() == {"detail": "The IdP refused the token exchange: invalid_request."}
