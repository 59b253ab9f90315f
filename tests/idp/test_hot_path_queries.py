"""Queries per request on the hot paths, pinned so that a change that adds one is noticed (issue 8)."""

import base64
import hashlib
import os
import re
import traceback
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients.services import client_create
from idp.keys import active_signing_key, signing_key_ensure

pytestmark = pytest.mark.django_db(transaction=True)
REDIRECT_URI = "https://rp.example.com/callback"
VERIFIER = "v" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


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
    """The first word and table of each statement the request ran, transaction control and the audit trail's own
    writes left out (how an event is written, and when, is audit's business and pinned by its tests)."""
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
        if sql.startswith("WITH"):  # one statement of data-modifying WITH queries: each write it makes, in order
            writes = re.findall(r"\((UPDATE|DELETE FROM|INSERT INTO) (\w+)", sql.replace('"', ""))
            if not writes[0][1].startswith("audit_"):
                statements.append("WITH " + ", ".join(f"{verb.split()[0]} {table}" for verb, table in writes))
            continue
        words = sql.replace('"', "").split()
        table = next(words[i + 1] for i, word in enumerate(words) if word in ("FROM", "INTO", "UPDATE"))
        if not table.startswith("audit_"):
            statements.append(f"{words[0]} {table}")
    return statements


def test_jwks_and_discovery_touch_no_database(client, service):
    assert _queries(client, "get", "/.well-known/jwks.json") == []
    assert _queries(client, "get", "/.well-known/openid-configuration") == []


def test_a_client_credentials_token_costs_a_fixed_number_of_queries(client, service):
    auth = _basic(service.client.client_id, service.client_secret)
    client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth)  # warm caches
    queries = _queries(client, "post", "/o/token/", data={"grant_type": "client_credentials"},
                       HTTP_AUTHORIZATION=auth)
    assert queries == [
        # The client and its roles come from the process's client cache, which only checks they are current.
        "SELECT clients_clientcachegeneration",
        "INSERT oauth2_provider_accesstoken",  # what introspection and revocation need
    ]


def test_introspection_costs_a_fixed_number_of_queries(client, service):
    auth = _basic(service.client.client_id, service.client_secret)
    token = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth).json()
    client.post("/o/introspect/", {"token": token["access_token"]}, HTTP_AUTHORIZATION=auth)  # warm caches
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/o/introspect/", {"token": token["access_token"]}, HTTP_AUTHORIZATION=auth)
    assert response.json()["active"] is True
    # One statement reads the client cache generation and the token's row; the client comes from the client cache;
    # no audit write: the token is active.
    statements = [query["sql"] for query in captured.captured_queries]
    assert len(statements) == 1, statements
    assert "clients_clientcachegeneration" in statements[0] and "oauth2_provider_accesstoken" in statements[0]


def test_an_access_token_sent_with_a_refresh_token_hint_is_still_found(client, service):
    auth = _basic(service.client.client_id, service.client_secret)
    token = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth).json()
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/o/introspect/", {"token": token["access_token"], "token_type_hint": "refresh_token"},
                               HTTP_AUTHORIZATION=auth)
    # RFC 7662 §2.1: a wrong hint widens the search. The refresh tokens are searched first, as hinted, so the
    # generation is read on its own for the caller's authentication.
    assert response.json()["active"] is True
    statements = [query["sql"] for query in captured.captured_queries]
    assert len(statements) == 3, statements
    assert "clients_clientcachegeneration" in statements[0] and "oauth2_provider_accesstoken" not in statements[0]


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
    refresh_request = {"grant_type": "refresh_token", "client_id": settings.IDP_FIRST_PARTY_CLIENT_ID}
    warm = client.post("/o/token/", {**refresh_request, "refresh_token": refresh})  # warm the client cache
    queries = _queries(client, "post", "/o/token/", data={**refresh_request,
                                                          "refresh_token": warm.json()["refresh_token"]})
    rotation = [
        # The presented token revoked if still live (the row lock: of two concurrent uses exactly one rotates),
        # its pointer to its access token cleared, and that access token deleted; then OpenID Connect Core §12.2's
        # new ID token, as the grant has openid, and the new pair.
        "UPDATE oauth2_provider_refreshtoken",
        "DELETE oauth2_provider_accesstoken",
        "INSERT oauth2_provider_idtoken",
        "INSERT oauth2_provider_accesstoken",
        "INSERT oauth2_provider_refreshtoken",
    ]
    assert queries == [
        # The presented token with its access token, user, roles and the code its family started from (auth_time,
        # sid and the absolute lifetime's start), and the client cache generation, which authenticates the public
        # first-party client from the cache.
        "SELECT clients_clientcachegeneration",
        # All the writes as one statement on PostgreSQL.
        *(["WITH " + ", ".join(rotation)] if connection.vendor == "postgresql" else rotation),
    ], queries


@pytest.fixture
def relying_party(make_user):
    """A confidential relying party, alice (one role), and a way to mint her authorization codes (with PKCE)."""
    make_user(username="alice", email="alice@example.com", roles=["admin"])
    return client_create(name="Relying party", client_type="confidential", grant_types=["authorization-code"],
                         redirect_uris=[REDIRECT_URI], allowed_scopes=["openid", "profile", "email", "roles"],
                         audiences=["https://orders.example.com"], skip_consent=True)


def _code(client, issued) -> str:
    """An authorization code for alice, from the real authorization endpoint."""
    from accounts.models import User

    client.force_login(User.objects.get(username="alice"))
    response = client.get("/o/authorize/", {
        "client_id": issued.client.client_id, "response_type": "code", "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email roles", "code_challenge": CHALLENGE, "code_challenge_method": "S256",
        "nonce": "n-0S6_WzA2Mj", "state": "s"})
    assert response.status_code == 302, response.content
    client.logout()
    return parse_qs(urlsplit(response["Location"]).query)["code"][0]


def test_a_code_exchange_costs_a_fixed_number_of_queries(client, service, relying_party):
    auth = _basic(relying_party.client.client_id, relying_party.client_secret)
    exchange = {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI, "code_verifier": VERIFIER}
    client.post("/o/token/", {**exchange, "code": _code(client, relying_party)}, HTTP_AUTHORIZATION=auth)  # warm
    code = _code(client, relying_party)
    queries = _queries(client, "post", "/o/token/", data={**exchange, "code": code}, HTTP_AUTHORIZATION=auth)
    redemption = [
        "DELETE oauth2_provider_grant",  # the code is single-use
        "INSERT oauth2_provider_idtoken",
        "INSERT oauth2_provider_accesstoken",
        "INSERT oauth2_provider_refreshtoken",
        "UPDATE idp_grantcontext",  # redeemed: a replay of the code revokes what was issued
    ]
    assert queries == [
        # The grant row with its user and roles, the code's context (auth_time and sid of the browser session that
        # approved) and the client cache generation, which authenticates the client from the cache: read once for
        # the scopes, nonce, validity, PKCE and redirect URI checks.
        "SELECT clients_clientcachegeneration",
        # All the writes as one statement on PostgreSQL, the code's context locked first.
        *(["WITH " + ", ".join(redemption)] if connection.vendor == "postgresql" else redemption),
    ], queries


def _commits(client, path: str, **kwargs) -> int:
    """How many transactions the request committed, the audit trail's own left out (tests write events at once).
    A statement outside a transaction (PostgreSQL and SQLite in autocommit) commits by itself and is not counted:
    each transaction costs a BEGIN and a COMMIT round trip more."""
    commits = []
    commit = connection.commit
    audit = os.path.join("audit", "services.py")

    def counted():
        if not any(frame.filename.endswith(audit) for frame in traceback.extract_stack()):
            commits.append(1)
        return commit()

    with mock.patch.object(connection, "commit", counted):
        response = client.post(path, **kwargs)
    assert response.status_code == 200, response.content
    return len(commits)


def test_a_client_credentials_token_is_written_without_a_transaction(client, service):
    auth = _basic(service.client.client_id, service.client_secret)
    client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth)  # warm the cache
    # The access token's one INSERT: atomic by itself.
    assert _commits(client, "/o/token/", data={"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth) == 0


def test_a_code_exchange_is_one_statement_on_postgresql_and_one_transaction_elsewhere(client, service,
                                                                                     relying_party):
    auth = _basic(relying_party.client.client_id, relying_party.client_secret)
    exchange = {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI, "code_verifier": VERIFIER}
    client.post("/o/token/", {**exchange, "code": _code(client, relying_party)}, HTTP_AUTHORIZATION=auth)  # warm
    # The code's deletion, the tokens and the code's redemption together: atomic by itself as one statement.
    commits = _commits(client, "/o/token/", data={**exchange, "code": _code(client, relying_party)},
                       HTTP_AUTHORIZATION=auth)
    assert commits == (0 if connection.vendor == "postgresql" else 1)


def test_a_code_already_deleted_or_of_another_client_is_refused_at_invalidation(client, service, relying_party):
    """The one DELETE is the code's single use: a code whose row is gone (redeemed by an exchange that got there
    first) or that belongs to another client deletes nothing and is refused."""
    from oauth2_provider.models import get_grant_model
    from oauthlib.common import Request as OauthlibRequest
    from oauthlib.oauth2.rfc6749 import errors

    from idp.validator import IdpOAuth2Validator

    grants = get_grant_model().objects
    validator = IdpOAuth2Validator()
    code = _code(client, relying_party)
    by_service = OauthlibRequest("https://idp.example.com/o/token/", "POST")
    by_service.client = service.client
    with pytest.raises(errors.InvalidGrantError):
        validator.invalidate_authorization_code(service.client.client_id, code, by_service)
    assert grants.filter(code=code).exists()
    by_owner = OauthlibRequest("https://idp.example.com/o/token/", "POST")
    by_owner.client = relying_party.client
    validator.invalidate_authorization_code(relying_party.client.client_id, code, by_owner)
    assert not grants.filter(code=code).exists()
    with pytest.raises(errors.InvalidGrantError):
        validator.invalidate_authorization_code(relying_party.client.client_id, code, by_owner)


def test_a_refresh_is_one_statement_on_postgresql_and_one_transaction_elsewhere(client, signed_in):
    from django.conf import settings

    _, refresh = signed_in
    refresh_request = {"grant_type": "refresh_token", "client_id": settings.IDP_FIRST_PARTY_CLIENT_ID}
    warm = client.post("/o/token/", {**refresh_request, "refresh_token": refresh})
    # The rotation (revoke, delete, insert the ID token and the new pair): atomic by itself when it is one statement.
    commits = _commits(client, "/o/token/", data={**refresh_request, "refresh_token": warm.json()["refresh_token"]})
    assert commits == (0 if connection.vendor == "postgresql" else 1)


def test_a_password_login_costs_a_fixed_number_of_queries(client, service, make_user, password):
    """The cookie API's sign-in: every statement but the Argon2id verification, which is the login's real cost."""
    make_user(username="alice", email="alice@example.com", roles=["admin"])
    make_user(username="bob", email="bob@example.com")
    csrf = client.get("/api/auth/csrf").json()["csrfToken"]
    sign_in = {"content_type": "application/json", "HTTP_X_CSRFTOKEN": csrf}
    for _ in range(2):  # the first creates idp-web, the second finds it and warms the client cache
        client.post("/api/auth/login", {"username": "bob", "password": password}, **sign_in)
        csrf = client.get("/api/auth/csrf").json()["csrfToken"]
        sign_in["HTTP_X_CSRFTOKEN"] = csrf
    queries = _queries(client, "post", "/api/auth/login", data={"username": "alice", "password": password},
                       **sign_in)
    issue = [
        "INSERT oauth2_provider_accesstoken",
        "INSERT oauth2_provider_refreshtoken",
        "UPDATE idp_grantcontext",  # the family and its first access token recorded
    ]
    assert queries == [
        "SELECT accounts_user",  # the account, by username or email
        "SELECT accounts_loginthrottle",  # a lock running on the pair or the address refuses before the hash
        "DELETE accounts_loginthrottle",  # success forgets the pair's failures
        "SELECT clients_clientcachegeneration",  # the first-party client, from the client cache
        "INSERT idp_grantcontext",  # auth_time and the family's start, for every refresh of this sign-in
        "SELECT accounts_role",  # the roles claim
        *(["WITH " + ", ".join(issue)] if connection.vendor == "postgresql" else issue),  # one statement there
        "UPDATE accounts_user",  # last_login
    ], queries


@pytest.mark.skipif(connection.vendor != "postgresql", reason="server-side binding and prepared statements")
def test_hot_statements_are_prepared_once_per_connection_and_then_run_by_name(client, service):
    """idp/settings.py: parameters go apart from the SQL, and a statement a connection has run five times is
    prepared on the server, so PostgreSQL parses and plans it once per connection, not once per request."""
    auth = _basic(service.client.client_id, service.client_secret)
    connection.close()  # a new session: nothing prepared on it yet, whatever ran before on this thread
    tokens = [client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth).json()
              for _ in range(8)]
    for token in tokens:
        response = client.post("/o/introspect/", {"token": token["access_token"]}, HTTP_AUTHORIZATION=auth)
        assert response.json()["active"] is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, parameter_types::text[], generic_plans + custom_plans "
                       "FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = cursor.fetchall()
    # What each hot statement's text is, as prepared, and whether it is the whole text or a part of it.
    hot = {
        "the token's INSERT": lambda sql: sql.startswith('INSERT INTO "oauth2_provider_accesstoken"'),
        "introspection's read": lambda sql: 'LEFT JOIN "oauth2_provider_accesstoken"' in sql,
        "the client credentials grant's generation read":
            lambda sql: sql == 'SELECT (SELECT value FROM "clients_clientcachegeneration" WHERE id = $1)',
    }
    for name, matches in hot.items():
        rows = [row for row in prepared if matches(row[0])]
        # Each prepared once on this connection, and run by name since: eight runs each, the first five of them
        # before it was prepared.
        assert len(rows) == 1, (name, prepared)
        statement, _parameter_types, runs = rows[0]
        assert "$1" in statement and "%s" not in statement  # server-side parameters, nothing quoted into the text
        assert runs == 3, (name, runs)


def test_prepared_statements_can_be_turned_off_for_a_pooler_that_cannot_keep_them(tmp_path):
    """DATABASE_PREPARED_STATEMENTS=0: for PgBouncer in transaction mode before 1.21, which hands a session's
    statements to another client. Parameters still go apart from the SQL."""
    from tests.idp.test_settings import settings_value

    url = {"DATABASE_URL": "postgres://idp@db.invalid:5432/idp"}
    options = settings_value("DATABASES['default']['OPTIONS']", url, tmp_path)
    assert options == "{'server_side_binding': True, 'prepare_threshold': 5}"
    off = settings_value("DATABASES['default']['OPTIONS']", {**url, "DATABASE_PREPARED_STATEMENTS": "0"}, tmp_path)
    assert off == "{'server_side_binding': True, 'prepare_threshold': None}"
