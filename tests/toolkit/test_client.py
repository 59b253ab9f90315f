"""TokenClient: the service's own client-credentials token, cached; RFC 8693 token exchange, exactly as sent."""

import base64
from urllib.parse import parse_qs

import pytest
from idp_resource_server import TokenClient, TokenRequestError

from tests.toolkit.conftest import Clock

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def client(issuer, clock):
    return TokenClient(issuer.issuer, "orders-service", "s3cret/with+specials", clock=clock)


def _form(request) -> dict:
    return {name: values[0] for name, values in parse_qs(request[3].decode()).items()}


def _basic(request) -> tuple[str, str]:
    scheme, _, credentials = request[2]["Authorization"].partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(credentials).decode().partition(":")
    return user, password


def test_client_credentials_token_is_requested_with_basic_auth_and_the_resource(issuer, client):
    issuer.token_response = (200, {"access_token": "token-1", "token_type": "Bearer", "expires_in": 300})
    assert client.client_credentials_token(audience="https://inventory.example.com", scope="inventory:read") == (
        "token-1")
    (request,) = issuer.requests
    assert request[1] == "/token"  # from the discovery document's token_endpoint
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined.
    assert _basic(request) == ("orders-service", "s3cret%2Fwith%2Bspecials")
    assert _form(request) == {"grant_type": "client_credentials", "resource": "https://inventory.example.com",
                              "scope": "inventory:read"}


def test_client_credentials_token_is_reused_until_shortly_before_it_expires(issuer, client, clock):
    issuer.token_response = (200, {"access_token": "token-1", "token_type": "bearer", "expires_in": 300})
    for _ in range(10):
        assert client.client_credentials_token(audience="https://inventory.example.com") == "token-1"
    clock.advance(269)
    assert client.client_credentials_token(audience="https://inventory.example.com") == "token-1"
    assert len(issuer.requests) == 1
    issuer.token_response = (200, {"access_token": "token-2", "token_type": "Bearer", "expires_in": 300})
    clock.advance(2)  # within the 30-second margin before expiry
    assert client.client_credentials_token(audience="https://inventory.example.com") == "token-2"
    assert len(issuer.requests) == 2


def test_tokens_for_different_audiences_are_cached_apart(issuer, client):
    issuer.token_response = (200, {"access_token": "token-1", "token_type": "Bearer", "expires_in": 300})
    client.client_credentials_token(audience="https://inventory.example.com")
    client.client_credentials_token(audience="https://billing.example.com")
    assert len(issuer.requests) == 2


def test_a_short_lived_token_is_renewed_at_half_its_life(issuer, client, clock):
    issuer.token_response = (200, {"access_token": "token-1", "token_type": "Bearer", "expires_in": 20})
    client.client_credentials_token(audience="a")
    clock.advance(11)
    client.client_credentials_token(audience="a")
    assert len(issuer.requests) == 2


def test_token_exchange_sends_exactly_the_rfc_8693_request(issuer, client):
    issuer.token_response = (200, {"access_token": "exchanged", "token_type": "Bearer", "expires_in": 120,
                                   "issued_token_type": ACCESS_TOKEN_TYPE})
    assert client.exchange(subject_token="users.access.token", audience="https://inventory.example.com") == (
        "exchanged")
    (request,) = issuer.requests
    assert _basic(request)[0] == "orders-service"
    assert _form(request) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": "users.access.token",
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "https://inventory.example.com",
    }


def test_exchange_is_never_cached(issuer, client):
    issuer.token_response = (200, {"access_token": "exchanged", "token_type": "Bearer", "expires_in": 120,
                                   "issued_token_type": ACCESS_TOKEN_TYPE})
    client.exchange(subject_token="a.b.c", audience="x")
    client.exchange(subject_token="a.b.c", audience="x")
    assert len(issuer.requests) == 2


def test_exchange_that_issues_something_else_than_an_access_token_is_refused(issuer, client):
    issuer.token_response = (200, {"access_token": "x", "token_type": "N_A", "expires_in": 120,
                                   "issued_token_type": "urn:ietf:params:oauth:token-type:id_token"})
    with pytest.raises(TokenRequestError):
        client.exchange(subject_token="a.b.c", audience="x")


@pytest.mark.parametrize("status, answer, error", [
    (400, {"error": "invalid_target", "error_description": "Not for you."}, "invalid_target"),
    (401, {"error": "invalid_client"}, "invalid_client"),
    (200, {"access_token": "x", "token_type": "mac", "expires_in": 60}, None),
    (200, {"access_token": "x", "token_type": "Bearer"}, None),
    (200, {"token_type": "Bearer", "expires_in": 60}, None),
], ids=["refused", "bad-client", "not-bearer", "no-lifetime", "no-token"])
def test_token_endpoint_refusals_and_odd_answers_raise_token_request_error(issuer, client, status, answer, error):
    issuer.token_response = (status, answer)
    with pytest.raises(TokenRequestError) as refused:
        client.client_credentials_token(audience="a")
    assert refused.value.error == error


def test_unreachable_token_endpoint_raises_token_request_error_without_the_secret(issuer, clock):
    client = TokenClient(issuer.issuer, "orders-service", "s3cret", token_endpoint="http://127.0.0.1:1/token",
                         clock=clock)
    with pytest.raises(TokenRequestError) as refused:
        client.client_credentials_token(audience="a")
    assert refused.value.error is None
    assert "s3cret" not in str(refused.value) and "s3cret" not in repr(client)


def test_a_token_endpoint_over_plain_http_off_loopback_is_refused(issuer):
    with pytest.raises(ValueError):
        TokenClient(issuer.issuer, "c", "s", token_endpoint="http://id.example.com/token")
