"""RFC 8693 token exchange: a service trades a user's token for one at another service, within an admin policy."""

from urllib.parse import urlsplit

import jwt
import pytest
import requests

from audit.models import Event
from clients.models import TokenExchangePolicy
from tests.flows.conftest import authorize

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = "https://orders.example.com"
INVENTORY = "https://inventory.example.com"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
def user_token(browser, discovery, make_client):
    """An access token alice got through the code flow for the orders service."""
    web = make_client(name="Orders web", audiences=[ORDERS], allowed_scopes=["openid", "profile", "orders:read"])
    response, oauth, _ = authorize(browser, discovery, web, scope="openid orders:read")
    return oauth.fetch_token(discovery["token_endpoint"], authorization_response=response.headers["Location"],
                             code_verifier="v" * 64)["access_token"]


@pytest.fixture
def orders_service(make_client):
    """The orders service's own client, allowed to exchange orders tokens for inventory tokens."""
    issued = make_client(name="Orders service", grant_types=["client-credentials", "token-exchange"],
                         redirect_uris=[], allowed_scopes=["inventory:read"], audiences=[INVENTORY])
    TokenExchangePolicy.objects.create(client=issued.client, subject_audience=ORDERS, target_audience=INVENTORY)
    return issued


def exchange(discovery, issued, subject_token, **extra):
    data = {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": INVENTORY, **extra}
    return requests.post(discovery["token_endpoint"], data=data, timeout=10,
                         auth=(issued.client.client_id, issued.client_secret))


def test_discovery_lists_the_token_exchange_grant(discovery):
    assert EXCHANGE in discovery["grant_types_supported"]


def test_an_exchanged_token_keeps_sub_and_roles_names_the_actor_and_lives_briefly(
        discovery, user_token, orders_service, jwks_client, idp):
    response = exchange(discovery, orders_service, user_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE  # RFC 8693 §2.2.1
    assert body["token_type"].lower() == "bearer"
    assert "refresh_token" not in body
    subject = jwt.decode(user_token, options={"verify_signature": False})
    token = body["access_token"]
    claims = jwt.decode(token, jwks_client.get_signing_key_from_jwt(token).key, algorithms=["RS256"],
                        audience=INVENTORY, issuer=idp)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert claims["sub"] == subject["sub"]
    assert claims["roles"] == subject["roles"] == ["admin", "orders:write"]
    assert claims["act"] == {"sub": orders_service.client.client_id}
    assert claims["scope"] == "openid orders:read"
    assert claims["exp"] - claims["iat"] <= 300
    assert claims["exp"] <= subject["exp"]
    event = Event.objects.get(type="token.exchanged")  # one event for the response, not also token.issued
    assert event.client_id == orders_service.client.client_id
    assert event.detail["subject_jti"] == subject["jti"]
    assert event.detail["jti"] == claims["jti"]
    assert event.detail["audience"] == INVENTORY
    assert event.detail["act"] == {"sub": orders_service.client.client_id}
    assert event.ip == "127.0.0.1"
    assert not Event.objects.filter(type="token.issued", client_id=orders_service.client.client_id).exists()


def test_exchange_into_an_audience_no_policy_allows_is_refused_with_invalid_target(
        discovery, user_token, orders_service):
    response = exchange(discovery, orders_service, user_token, audience="https://payroll.example.com")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert not Event.objects.filter(type="token.exchanged").exists()
    failure = Event.objects.get(type="token.failed", client_id=orders_service.client.client_id)
    assert failure.reason == "invalid_target"


def test_a_client_without_a_policy_cannot_exchange_a_token_it_received(discovery, user_token, make_client):
    other = make_client(name="Other", grant_types=["client-credentials", "token-exchange"], redirect_uris=[],
                        allowed_scopes=["x"], audiences=[INVENTORY])
    response = exchange(discovery, other, user_token)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_a_client_without_the_grant_cannot_exchange_even_with_a_policy(discovery, user_token, make_client):
    plain = make_client(name="Plain", grant_types=["client-credentials"], redirect_uris=[], allowed_scopes=["x"],
                        audiences=[INVENTORY])
    TokenExchangePolicy.objects.create(client=plain.client, subject_audience=ORDERS, target_audience=INVENTORY)
    response = exchange(discovery, plain, user_token)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_exchange_never_widens_scopes(discovery, user_token, orders_service):
    response = exchange(discovery, orders_service, user_token, scope="openid orders:read orders:write")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    narrower = exchange(discovery, orders_service, user_token, scope="orders:read")
    assert narrower.status_code == 200
    assert jwt.decode(narrower.json()["access_token"], options={"verify_signature": False})["scope"] == "orders:read"


@pytest.mark.parametrize("tamper", ["forged", "id_token", "garbage"])
def test_a_forged_or_wrong_type_subject_token_is_refused(discovery, user_token, orders_service, tamper):
    header, payload, signature = user_token.split(".")
    subject = {
        "forged": f"{header}.{payload}.{signature[:-4]}AAAA",
        "id_token": jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256"),
        "garbage": "not-a-token",
    }[tamper]
    response = exchange(discovery, orders_service, subject)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert not Event.objects.filter(type="token.exchanged").exists()


def test_a_revoked_subject_token_cannot_be_exchanged(discovery, user_token, orders_service, make_client):
    from oauth2_provider.models import get_access_token_model

    get_access_token_model().objects.all().delete()
    response = exchange(discovery, orders_service, user_token)
    assert response.status_code == 400
    assert "revoked" in response.json()["error_description"]


def test_a_public_client_cannot_exchange(discovery, user_token, make_client):
    spa = make_client(name="SPA", client_type="public", grant_types=["authorization-code"])
    response = requests.post(discovery["token_endpoint"], timeout=10, data={
        "grant_type": EXCHANGE, "subject_token": user_token, "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": INVENTORY, "client_id": spa.client.client_id})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert urlsplit(discovery["token_endpoint"]).path == "/o/token/"


def test_a_token_of_a_disabled_client_cannot_be_exchanged(discovery, user_token, orders_service):
    from clients.models import Client
    from clients.services import client_disable

    web = Client.objects.get(name="Orders web")
    client_disable(client=web)
    response = exchange(discovery, orders_service, user_token)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "disabled" in response.json()["error_description"]
    assert not Event.objects.filter(type="token.exchanged").exists()


def test_a_token_of_a_locked_user_cannot_be_exchanged(discovery, user_token, orders_service):
    from accounts.models import User

    User.objects.filter(username="alice").update(is_active=False)
    response = exchange(discovery, orders_service, user_token)
    assert response.status_code == 400
    assert "locked" in response.json()["error_description"]
