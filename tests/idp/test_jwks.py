"""The JWKS endpoint: public members only, cacheable by resource servers, served from memory."""

import pytest
from django.utils import timezone
from jwcrypto import jws
from jwcrypto.jwk import JWKSet

from idp.keys import active_signing_key, next_key_lead_time, signing_key_ensure, signing_key_rotate
from idp.models import SigningKey

URL = "/.well-known/jwks.json"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def cache_control(response) -> dict:
    directives = {}
    for part in response["Cache-Control"].split(","):
        name, _, value = part.strip().partition("=")
        directives[name] = value
    return directives


@pytest.mark.django_db
def test_jwks_publishes_next_active_and_retired_keys_with_public_members_only(client):
    signing_key_ensure()
    signing_key_rotate(now=timezone.now() + next_key_lead_time())

    response = client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    published = response.json()["keys"]
    assert {jwk["kid"] for jwk in published} == set(SigningKey.objects.values_list("kid", flat=True))
    assert published[0]["kid"] == active_signing_key().kid  # the signing key first
    for jwk in published:
        assert jwk["use"] == "sig" and jwk["alg"] == "RS256" and jwk["kty"] == "RSA"
        assert {"n", "e"} <= set(jwk)
        assert not PRIVATE_MEMBERS & set(jwk)


@pytest.mark.django_db
def test_jwks_is_public_and_cacheable_for_idp_jwks_max_age(client, settings):
    settings.IDP_JWKS_MAX_AGE = 123
    signing_key_ensure()
    directives = cache_control(client.get(URL))
    assert directives == {"public": "", "max-age": "123"}


@pytest.mark.django_db
def test_a_second_jwks_request_does_no_database_query(client, django_assert_num_queries):
    signing_key_ensure()
    client.get(URL)
    with django_assert_num_queries(0):
        response = client.get(URL)
    assert len(response.json()["keys"]) == 2


@pytest.mark.django_db
def test_jwks_before_bootstrap_is_an_empty_set_that_is_not_cached(client):
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert "no-store" in cache_control(response) and "public" not in cache_control(response)


@pytest.mark.django_db
@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_token_signed_by_the_active_key_verifies_against_the_served_jwks(client, settings, algorithm):
    settings.IDP_SIGNING_ALGORITHM = algorithm
    signing_key_ensure()
    key = active_signing_key()
    token = jws.JWS(b'{"sub":"alice"}')
    token.add_signature(key.jwk, alg=algorithm, protected={"alg": algorithm, "kid": key.kid})
    compact = token.serialize(compact=True)

    published = JWKSet.from_json(client.get(URL).content)
    received = jws.JWS()
    received.deserialize(compact)
    received.verify(published.get_key(key.kid), alg=algorithm)
    assert received.payload == b'{"sub":"alice"}'
    assert published.get_key(key.kid).get("alg") == algorithm


@pytest.mark.django_db
def test_jwks_answers_get_only(client):
    assert client.post(URL).status_code == 405
