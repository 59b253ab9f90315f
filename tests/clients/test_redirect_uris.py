"""Client registration refuses redirect URIs and settings that would open a door, and writes nothing when it does."""

import pytest
from django.core.exceptions import ValidationError

from clients.models import Client, redirect_uri_problem
from clients.services import client_create

ACCEPTED = [
    "https://rp.example.com/callback",
    "https://rp.example.com:8443/callback?tenant=a",
    "http://127.0.0.1:8765/callback",
    "http://127.0.0.2/callback",
    "http://[::1]:8765/callback",
    "http://localhost/callback",
    "http://localhost:3000/callback",
]

REFUSED = {
    "http-on-a-public-host": "http://rp.example.com/callback",
    "http-on-a-private-address": "http://10.0.0.1/callback",
    "http-on-a-host-named-like-localhost": "http://localhost.evil.example.com/callback",
    "http-on-a-loopback-lookalike": "http://127.0.0.1.evil.example.com/callback",
    "wildcard-host": "https://*.example.com/callback",
    "wildcard-path": "https://rp.example.com/*",
    "fragment": "https://rp.example.com/callback#done",
    "empty-fragment": "https://rp.example.com/callback#",
    "username": "https://rp.example.com@evil.example.com/callback",
    "username-and-password": "https://user:secret@rp.example.com/callback",
    "backslash-userinfo-trick": "https://rp.example.com\\@evil.example.com/callback",
    "javascript-scheme": "javascript:alert(document.cookie)",
    "data-scheme": "data:text/html,<script>alert(1)</script>",
    "custom-scheme": "com.example.app://callback",
    "ftp-scheme": "ftp://rp.example.com/callback",
    "relative": "/callback",
    "scheme-relative": "//rp.example.com/callback",
    "no-scheme": "rp.example.com/callback",
    "malformed-port": "https://rp.example.com:99999/callback",
    "empty": "",
}


def _values(**overrides) -> dict:
    values = dict(
        name="Relying party", client_type="confidential", grant_types=["authorization-code"],
        redirect_uris=["https://rp.example.com/callback"], allowed_scopes=["openid", "profile"],
        audiences=["https://orders.example.com"],
    )
    values.update(overrides)
    return values


def _refused(field: str, **overrides) -> ValidationError:
    before = Client.objects.count()
    with pytest.raises(ValidationError) as refused:
        client_create(**_values(**overrides))
    assert field in refused.value.message_dict, refused.value.message_dict
    assert Client.objects.count() == before
    return refused.value


# --- redirect_uri_problem ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ACCEPTED)
def test_https_and_loopback_http_redirect_uris_have_no_problem(uri):
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize("uri", REFUSED.values(), ids=REFUSED.keys())
def test_dangerous_redirect_uris_are_named_as_a_problem(uri):
    problem = redirect_uri_problem(uri)
    assert isinstance(problem, str) and problem


def test_a_problem_names_the_offending_uri_and_why():
    assert "loopback" in redirect_uri_problem("http://rp.example.com/callback")
    assert "wildcard" in redirect_uri_problem("https://*.example.com/callback")
    assert "fragment" in redirect_uri_problem("https://rp.example.com/callback#x")
    assert "user information" in redirect_uri_problem("https://u@rp.example.com/callback")
    assert "'com.example.app'" in redirect_uri_problem("com.example.app://callback")


# --- client_create ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("uri", ACCEPTED)
def test_client_with_https_or_loopback_http_redirect_uri_is_created(uri):
    issued = client_create(**_values(redirect_uris=[uri]))
    assert Client.objects.get(pk=issued.client.pk).redirect_uris == uri
    assert issued.client.redirect_uri_allowed(uri)


@pytest.mark.django_db
@pytest.mark.parametrize("uri", [uri for uri in REFUSED.values() if uri], ids=[k for k, v in REFUSED.items() if v])
def test_client_with_a_dangerous_redirect_uri_is_refused_and_not_written(uri):
    _refused("redirect_uris", redirect_uris=["https://rp.example.com/callback", uri])


@pytest.mark.django_db
def test_client_with_a_dangerous_post_logout_redirect_uri_is_refused_and_not_written():
    _refused("post_logout_redirect_uris", post_logout_redirect_uris=["http://rp.example.com/bye"])


@pytest.mark.django_db
def test_one_redirect_uri_entry_holding_two_uris_is_refused_and_not_written():
    # Redirect URIs are stored space-separated; an entry with whitespace must not smuggle in a second URI.
    _refused("redirect_uris", redirect_uris=["https://rp.example.com/callback https://evil.example.com/callback"])


@pytest.mark.django_db
def test_public_client_cannot_use_the_client_credentials_grant():
    _refused("client_type", client_type="public", grant_types=["client-credentials"], redirect_uris=[])


@pytest.mark.django_db
def test_authorization_code_client_without_a_redirect_uri_is_refused():
    _refused("redirect_uris", redirect_uris=[])


@pytest.mark.django_db
@pytest.mark.parametrize("grant", ["implicit", "password", "openid-hybrid"])
def test_grants_the_idp_does_not_offer_are_refused(grant):
    _refused("grant_types", grant_types=[grant])


@pytest.mark.django_db
def test_default_audience_outside_the_allowed_audiences_is_refused():
    _refused("default_audience", default_audience="https://billing.example.com")


@pytest.mark.django_db
def test_access_token_lifetime_above_the_cap_is_refused(settings):
    cap = settings.IDP_ACCESS_TOKEN_MAX_LIFETIME
    _refused("access_token_lifetime", access_token_lifetime=cap + 1)
    _refused("access_token_lifetime", access_token_lifetime=0)
    assert client_create(**_values(access_token_lifetime=cap)).client.access_token_lifetime == cap
