"""Queries per request on the hot paths, pinned so that a change that adds one is noticed (issue 8)."""

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients.services import client_create
from idp.keys import active_signing_key, signing_key_ensure

pytestmark = pytest.mark.django_db(transaction=True)


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def service():
    signing_key_ensure()
    active_signing_key()  # the key cache is per process: warm it, as any running worker has
    return client_create(name="Orders service", client_type="confidential", grant_types=["client-credentials"],
                         allowed_scopes=["orders:read"], audiences=["https://orders.example.com"])


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET LOCAL")


def _queries(client, method, path, **kwargs) -> list[str]:
    """The first word and table of each statement the request ran, transaction control left out."""
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 200, response.content
    statements = []
    for query in captured.captured_queries:
        sql = query["sql"]
        if sql.startswith("SET LOCAL") and "; " in sql:  # a setting sent with the statement it applies to
            sql = sql.split("; ", 1)[1]
        if sql.startswith(TRANSACTION_CONTROL):
            continue
        words = sql.replace('"', "").split()
        table = next(words[i + 1] for i, word in enumerate(words) if word in ("FROM", "INTO", "UPDATE"))
        statements.append(f"{words[0]} {table}")
    return statements


# Appending an audit event: lock the chain head, insert the event, move the head; on PostgreSQL the last two are
# one statement (audit/services.py).
AUDIT_EVENT = (["SELECT audit_chainhead", "WITH audit_event"] if connection.vendor == "postgresql" else
               ["SELECT audit_chainhead", "INSERT audit_event", "UPDATE audit_chainhead"])


def test_jwks_and_discovery_touch_no_database(client, service):
    assert _queries(client, "get", "/.well-known/jwks.json") == []
    assert _queries(client, "get", "/.well-known/openid-configuration") == []


def test_a_client_credentials_token_costs_a_fixed_number_of_queries(client, service):
    auth = _basic(service.client.client_id, service.client_secret)
    client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth)  # warm caches
    queries = _queries(client, "post", "/o/token/", data={"grant_type": "client_credentials"},
                       HTTP_AUTHORIZATION=auth)
    assert queries == [
        "SELECT clients_client",  # the client, authenticated by its keyed secret hash
        "SELECT accounts_role",  # the client's roles, carried by its own tokens
        "INSERT oauth2_provider_accesstoken",  # what introspection and revocation need
        *AUDIT_EVENT,  # token.issued
    ]


def test_introspection_costs_a_fixed_number_of_queries(client, service):
    auth = _basic(service.client.client_id, service.client_secret)
    token = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth).json()
    client.post("/o/introspect/", {"token": token["access_token"]}, HTTP_AUTHORIZATION=auth)  # warm caches
    queries = _queries(client, "post", "/o/introspect/", data={"token": token["access_token"]},
                       HTTP_AUTHORIZATION=auth)
    assert queries == ["SELECT clients_client", "SELECT oauth2_provider_accesstoken"]  # no audit write: active


@pytest.fixture
def signed_in(client, make_user, password, service):
    """alice's tokens from the first-party cookie API: (access token, refresh token)."""
    make_user(username="alice", email="alice@example.com", roles=["admin"])
    csrf = client.get("/api/auth/csrf").json()["csrfToken"]
    response = client.post("/api/auth/login", {"username": "alice", "password": password},
                           content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200, response.content
    from django.conf import settings

    return response.cookies[settings.IDP_ACCESS_COOKIE_NAME].value, response.cookies[
        settings.IDP_REFRESH_COOKIE_NAME].value


def test_userinfo_costs_a_fixed_number_of_queries(client, signed_in):
    access, _ = signed_in
    queries = _queries(client, "get", "/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert queries == ["SELECT oauth2_provider_accesstoken", "SELECT accounts_role"]


def test_a_refresh_costs_a_fixed_number_of_queries(client, signed_in):
    from django.conf import settings

    _, refresh = signed_in
    queries = _queries(client, "post", "/o/token/", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": settings.IDP_FIRST_PARTY_CLIENT_ID})
    # Rotation is DOT's (row locks, the old pair revoked, the new pair written); an ID token is re-issued because
    # the grant has `openid` (OpenID Connect Core §12.2); one audit event.
    assert queries[-len(AUDIT_EVENT):] == AUDIT_EVENT
    assert len(queries) == 18 + len(AUDIT_EVENT), queries
