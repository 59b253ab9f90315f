"""A live IdP over real HTTP, clients registered through the service layer, and a signed-in browser."""

import re

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from audit import events
from audit.models import Event
from clients.services import client_create
from idp.keys import reset_key_cache, signing_key_ensure

REDIRECT_URI = "https://rp.example.com/callback"
# The events one OAuth request may write; each request writes exactly one of them (alerts come on top).
REQUEST_EVENTS = (events.TOKEN_ISSUED, events.TOKEN_FAILED, events.TOKEN_REFRESH_REUSED, events.TOKEN_REJECTED,
                  events.TOKEN_REVOKED, events.ACCESS_DENIED)


def audit_mark() -> int:
    """The sequence number of the newest audit event: what a request writes after this is its own."""
    newest = Event.objects.order_by("-seq").first()
    return newest.seq if newest else 0


def recorded(since: int, **expected) -> Event:
    """The one request event written after `since`, checked against `expected` (type, reason, client_id...)."""
    written = list(Event.objects.filter(seq__gt=since, type__in=REQUEST_EVENTS).order_by("seq"))
    assert len(written) == 1, [(event.type, event.reason) for event in written]
    event = written[0]
    for name, value in expected.items():
        assert getattr(event, name) == value, (name, getattr(event, name), value)
    return event


def recorded_in_turn(since: int, *expected: tuple[str, str]) -> list[Event]:
    """The request events written after `since`, one (type, reason) per request, in order."""
    written = list(Event.objects.filter(seq__gt=since, type__in=REQUEST_EVENTS).order_by("seq"))
    assert [(event.type, event.reason) for event in written] == list(expected)
    return written


@pytest.fixture
def idp(live_server, settings, transactional_db):
    """The live server's URL, made the issuer, with signing keys in place."""
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    reset_key_cache()
    signing_key_ensure()
    return live_server.url


@pytest.fixture
def discovery(idp):
    return requests.get(f"{idp}/.well-known/openid-configuration", timeout=10).json()


@pytest.fixture
def jwks_client(discovery):
    return jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False)


@pytest.fixture
def make_client(idp):
    def make(**overrides):
        values = dict(
            name="Relying party", client_type="confidential", grant_types=["authorization-code"],
            redirect_uris=[REDIRECT_URI], post_logout_redirect_uris=["https://rp.example.com/bye"],
            allowed_scopes=["openid", "profile", "email", "roles", "orders:read"],
            audiences=["https://orders.example.com", "https://inventory.example.com"], skip_consent=True,
        )
        values.update(overrides)
        return client_create(**values)

    return make


@pytest.fixture
def rp(make_client):
    """A confidential relying party using the authorization-code grant."""
    return make_client()


@pytest.fixture
def service(make_client):
    """A confidential service using the client-credentials grant."""
    return make_client(name="Orders service", grant_types=["client-credentials"], redirect_uris=[],
                       allowed_scopes=["orders:read", "orders:write"])


@pytest.fixture
def browser(idp, make_user, password):
    """A requests session signed in to the IdP as alice (roles: admin, orders:write)."""
    make_user(username="alice", email="alice@example.com", roles=["admin", "orders:write"], first_name="Alice")
    session = requests.Session()
    page = session.get(f"{idp}/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(f"{idp}/login/", data={"username": "alice", "password": password,
                                                  "csrfmiddlewaretoken": csrf, "next": "/healthz"},
                            headers={"Referer": f"{idp}/login/"}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return session


def authorize(browser, discovery, issued, *, scope="openid profile email roles", redirect_uri=REDIRECT_URI,
              extra=None, code_verifier="v" * 64):
    """Run the authorization request in the signed-in browser; returns (the redirect URL, the authlib session)."""
    oauth = OAuth2Session(issued.client.client_id, issued.client_secret, scope=scope, redirect_uri=redirect_uri,
                          code_challenge_method="S256")
    url, state = oauth.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=code_verifier, nonce="n-0S6_WzA2Mj", **(extra or {}))
    response = browser.get(url, allow_redirects=False, timeout=10)
    return response, oauth, state


__all__ = ["audit_mark", "authorize", "create_s256_code_challenge", "recorded", "recorded_in_turn", "REDIRECT_URI"]
