"""The client cache: a change to a client, its roles or a role is seen by the very next token request, in every
process (a second process is a second ClientCache, warmed before the change)."""

import base64

import jwt
import pytest

from accounts.models import Role
from clients.cache import ClientCache, client_cache, client_cached_get
from clients.models import Client, ClientCacheGeneration
from clients.services import client_create, client_disable, client_rotate_secret
from idp.keys import active_signing_key, signing_key_ensure

pytestmark = pytest.mark.django_db


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def service():
    signing_key_ensure()
    active_signing_key()
    issued = client_create(name="Orders service", client_type="confidential", grant_types=["client-credentials"],
                           allowed_scopes=["orders:read"], audiences=["https://orders.example.com"])
    issued.client.roles.add(Role.objects.create(name="orders:write"))
    return issued


@pytest.fixture
def other_process(service):
    """A second process's cache, holding the service as it was before the change under test."""
    cache = ClientCache()
    assert cache.get(service.client.client_id) is not None
    return cache


def _token(client, service, secret=None):
    return client.post("/o/token/", {"grant_type": "client_credentials"},
                       HTTP_AUTHORIZATION=_basic(service.client.client_id, secret or service.client_secret))


def _roles(response) -> list[str]:
    assert response.status_code == 200, response.content
    # Signed by the IdP a moment ago; only the roles are read here (tests/flows verify signatures).
    return jwt.decode(response.json()["access_token"], options={"verify_signature": False})["roles"]


def _fresh(client: Client) -> Client:
    return Client.objects.get(pk=client.pk)


def test_a_cached_client_costs_one_query_and_carries_its_roles(service, django_assert_num_queries):
    client_cached_get(client_id=service.client.client_id)
    with django_assert_num_queries(1):
        cached = client_cached_get(client_id=service.client.client_id)
        assert [role.name for role in cached.roles.all()] == ["orders:write"]


def test_each_lookup_gets_its_own_instance(service):
    first = client_cached_get(client_id=service.client.client_id)
    first.enabled = False
    first._state.fields_cache["owner"] = "set by one request"
    first._prefetched_objects_cache["roles"] = []
    second = client_cached_get(client_id=service.client.client_id)
    assert second.enabled is True
    assert "owner" not in second._state.fields_cache
    assert [role.name for role in second.roles.all()] == ["orders:write"]
    # A copy is a saved row, on the database it was read from: saving it updates, never inserts.
    assert second._state.adding is False and second._state.db == "default"
    assert second.pk == service.client.pk and second.client_id == service.client.client_id


def test_an_unknown_client_id_is_none_and_not_remembered(service):
    assert client_cached_get(client_id="nobody") is None
    assert client_cached_get(client_id="nul\x00byte") is None
    assert "nobody" not in client_cache._entries


def test_disabling_a_client_refuses_its_very_next_token_request(client, service, other_process):
    assert _token(client, service).status_code == 200
    client_disable(client=_fresh(service.client))
    assert _token(client, service).status_code == 401
    assert other_process.get(service.client.client_id).enabled is False


def test_a_queryset_update_is_seen_as_well(client, service, other_process):
    assert _token(client, service).status_code == 200
    Client.objects.filter(pk=service.client.pk).update(enabled=False)
    assert _token(client, service).status_code == 401
    assert other_process.get(service.client.client_id).enabled is False


def test_a_rotated_secret_replaces_the_old_one_on_the_very_next_request(client, service, other_process):
    assert _token(client, service).status_code == 200
    rotated = client_rotate_secret(client=_fresh(service.client))
    assert _token(client, service).status_code == 401
    assert _token(client, service, secret=rotated.client_secret).status_code == 200
    assert other_process.get(service.client.client_id).client_secret == _fresh(service.client).client_secret


def test_roles_added_or_removed_reach_the_next_token(client, service, other_process):
    assert _roles(_token(client, service)) == ["orders:write"]
    service.client.roles.add(Role.objects.create(name="admin"))
    assert _roles(_token(client, service)) == ["admin", "orders:write"]
    Role.objects.get(name="orders:write").clients.remove(service.client)  # from the role's side
    assert _roles(_token(client, service)) == ["admin"]
    assert [role.name for role in other_process.get(service.client.client_id).roles.all()] == ["admin"]


def test_a_renamed_or_deleted_role_reaches_the_next_token(client, service, other_process):
    assert _roles(_token(client, service)) == ["orders:write"]
    role = Role.objects.get(name="orders:write")
    role.name = "orders:admin"
    role.save()
    assert _roles(_token(client, service)) == ["orders:admin"]
    assert [role.name for role in other_process.get(service.client.client_id).roles.all()] == ["orders:admin"]
    role.delete()
    assert _roles(_token(client, service)) == []


def test_edited_grant_types_apply_to_the_next_request(client, service, other_process):
    assert _token(client, service).status_code == 200
    edited = _fresh(service.client)
    edited.grant_types = ["token-exchange"]
    edited.save()
    response = _token(client, service)
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    assert other_process.get(service.client.client_id).grant_types == ["token-exchange"]


def test_edited_redirect_uris_apply_to_the_next_lookup(service, other_process):
    edited = _fresh(service.client)
    edited.redirect_uris = "https://orders.example.com/cb"
    edited.save()
    assert client_cached_get(client_id=service.client.client_id).redirect_uri_allowed("https://orders.example.com/cb")
    assert other_process.get(service.client.client_id).redirect_uri_allowed("https://orders.example.com/cb")


def test_a_deleted_client_gets_no_token(client, service, other_process):
    assert _token(client, service).status_code == 200
    _fresh(service.client).delete()
    assert _token(client, service).status_code == 401
    assert other_process.get(service.client.client_id) is None


def test_a_process_that_forgot_its_entries_reloads_them_under_the_same_generation(client, service):
    assert _token(client, service).status_code == 200
    generation = ClientCacheGeneration.objects.get().value
    client_cache.clear()
    assert _roles(_token(client, service)) == ["orders:write"]
    assert ClientCacheGeneration.objects.get().value == generation


def test_without_a_generation_row_nothing_is_cached(service, django_assert_num_queries):
    ClientCacheGeneration.objects.all().delete()
    client_cached_get(client_id=service.client.client_id)
    with django_assert_num_queries(3):  # generation, client, roles: every time
        client_cached_get(client_id=service.client.client_id)


def _introspect(client, service, token, secret=None):
    return client.post("/o/introspect/", {"token": token},
                       HTTP_AUTHORIZATION=_basic(service.client.client_id, secret or service.client_secret))


def test_introspection_reads_the_generation_with_the_token_and_still_sees_a_rotated_secret(client, service):
    token = _token(client, service).json()["access_token"]
    assert _introspect(client, service, token).json()["active"] is True  # the caller is now cached
    rotated = client_rotate_secret(client=_fresh(service.client))
    refused = _introspect(client, service, token)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert _introspect(client, service, token, secret=rotated.client_secret).json()["active"] is True


def test_introspection_by_a_disabled_client_is_refused_on_the_very_next_request(client, service):
    token = _token(client, service).json()["access_token"]
    assert _introspect(client, service, token).json()["active"] is True
    Client.objects.filter(pk=service.client.pk).update(enabled=False)
    assert _introspect(client, service, token).status_code == 401


def test_introspection_without_a_generation_row_loads_the_caller_every_time(client, service,
                                                                            django_assert_num_queries):
    token = _token(client, service).json()["access_token"]
    ClientCacheGeneration.objects.all().delete()
    _introspect(client, service, token)
    with django_assert_num_queries(3):  # generation and token, then the client and its roles: nothing cached
        assert _introspect(client, service, token).json()["active"] is True
    rotated = client_rotate_secret(client=_fresh(service.client))  # writes the row again
    assert _introspect(client, service, token).status_code == 401
    assert _introspect(client, service, token, secret=rotated.client_secret).json()["active"] is True
