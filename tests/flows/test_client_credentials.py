"""Client credentials: the service's own token, audience by resource, no refresh token."""

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from accounts.models import Role
from audit import events
from audit.models import Event
from tests.flows.conftest import audit_mark, recorded

pytestmark = pytest.mark.django_db(transaction=True)


def fetch(discovery, service, **extra):
    oauth = OAuth2Session(service.client.client_id, service.client_secret)
    return oauth.fetch_token(discovery["token_endpoint"], grant_type="client_credentials", **extra)


def test_service_token_names_the_client_as_subject_and_carries_its_roles(discovery, service, jwks_client, idp):
    role = Role.objects.create(name="inventory:read")
    service.client.roles.add(role)
    mark = audit_mark()
    token = fetch(discovery, service, resource="https://inventory.example.com")
    assert "refresh_token" not in token
    access = token["access_token"]
    key = jwks_client.get_signing_key_from_jwt(access)
    claims = jwt.decode(access, key.key, algorithms=["RS256"], audience="https://inventory.example.com",
                        issuer=idp)
    assert claims["sub"] == service.client.client_id == claims["client_id"]
    assert claims["roles"] == ["inventory:read"]
    assert claims["scope"] == "orders:read orders:write"
    assert "auth_time" not in claims
    assert jwt.get_unverified_header(access)["typ"] == "at+jwt"
    issued = recorded(mark, type=events.TOKEN_ISSUED, client_id=service.client.client_id, user=None, username="")
    assert issued.detail == {"grant_type": "client_credentials", "jti": claims["jti"],
                             "scope": "orders:read orders:write", "audience": "https://inventory.example.com"}


def test_without_resource_the_default_audience_is_used(discovery, service):
    claims = jwt.decode(fetch(discovery, service)["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://orders.example.com"


def test_audience_parameter_is_accepted_as_a_synonym_for_resource(discovery, service):
    token = fetch(discovery, service, audience="https://inventory.example.com")
    assert jwt.decode(token["access_token"], options={"verify_signature": False})["aud"] == (
        "https://inventory.example.com")


def test_scope_subset_is_honoured_and_unknown_scope_refused(discovery, service):
    token = fetch(discovery, service, scope="orders:read")
    assert jwt.decode(token["access_token"], options={"verify_signature": False})["scope"] == "orders:read"
    mark = audit_mark()
    answer = requests.post(discovery["token_endpoint"], data={"grant_type": "client_credentials",
                                                              "scope": "payroll:write"},
                           auth=(service.client.client_id, service.client_secret), timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"
    recorded(mark, type=events.TOKEN_FAILED, reason="invalid_scope", client_id=service.client.client_id)


def test_client_credentials_is_refused_to_a_client_not_registered_for_it(discovery, rp):
    mark = audit_mark()
    answer = requests.post(discovery["token_endpoint"], data={"grant_type": "client_credentials"},
                           auth=(rp.client.client_id, rp.client_secret), timeout=10)
    assert answer.status_code in (400, 401)
    assert answer.json()["error"] == "unauthorized_client"
    recorded(mark, type=events.TOKEN_FAILED, reason="unauthorized_client", client_id=rp.client.client_id)


def test_rotated_secret_replaces_the_old_one_at_once(discovery, service):
    from clients.services import client_rotate_secret

    rotated = client_rotate_secret(client=service.client)
    [rotation] = Event.objects.filter(type=events.CLIENT_SECRET_ROTATED, client_id=service.client.client_id)
    assert rotated.client_secret not in str(rotation.detail)
    mark = audit_mark()
    old = requests.post(discovery["token_endpoint"], data={"grant_type": "client_credentials"},
                        auth=(service.client.client_id, service.client_secret), timeout=10)
    assert old.status_code == 401
    assert old.json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in old.headers
    recorded(mark, type=events.TOKEN_FAILED, reason="invalid_client", client_id=service.client.client_id)
    new = requests.post(discovery["token_endpoint"], data={"grant_type": "client_credentials"},
                        auth=(service.client.client_id, rotated.client_secret), timeout=10)
    assert new.status_code == 200


def test_es256_keys_sign_es256_tokens(discovery, service, settings, jwks_client, idp):
    from datetime import timedelta

    from django.utils import timezone

    from idp.keys import reset_key_cache, signing_key_rotate

    settings.IDP_SIGNING_ALGORITHM = "ES256"
    # A "next" key is promoted only once it has been published for a JWKS cache lifetime.
    signing_key_rotate(now=timezone.now() + timedelta(hours=1))  # RS256 next -> active; a new ES256 next
    signing_key_rotate(now=timezone.now() + timedelta(hours=2))  # the ES256 key becomes active
    reset_key_cache()
    access = fetch(discovery, service)["access_token"]
    header = jwt.get_unverified_header(access)
    assert header["alg"] == "ES256"
    key = jwks_client.get_signing_key_from_jwt(access)
    jwt.decode(access, key.key, algorithms=["ES256"], audience="https://orders.example.com", issuer=idp)
