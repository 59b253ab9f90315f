"""The plain-SQL reads and writes of the token hot paths give the very rows and instances the ORM would."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    set_token_value,
)

from clients.services import client_create
from idp.claims import user_role_names
from idp.models import GrantContext
from idp.tokens import token_checksum
from idp.validator.rows import row_insert
from idp.validator.statements import access_token_read, refresh_token_read
from idp.validator.writes import authorization_code_redeem, refresh_token_rotate

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
IDToken = get_id_token_model()
Grant = get_grant_model()


@pytest.fixture
def issued(make_user):
    """alice, a client, and an access and a refresh token written by the lean INSERT."""
    alice = make_user(username="alice", roles=["admin", "orders:write"])
    client = client_create(name="Relying party", client_type="confidential", grant_types=["authorization-code"],
                           redirect_uris=["https://rp.example.com/cb"], allowed_scopes=["openid"]).client
    access = AccessToken(user=alice, scope="openid", expires=timezone.now() + timedelta(minutes=5),
                         application=client, resource=[])
    set_token_value(access, "access-token-value")
    row_insert(access)
    refresh = RefreshToken(user=alice, application=client, access_token=access, token_family=uuid.uuid4(), resource=[])
    set_token_value(refresh, "refresh-token-value")
    row_insert(refresh)
    return alice, client, access, refresh


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_a_lean_insert_writes_the_row_save_would_write(issued):
    _, _, access, refresh = issued
    assert _fields(AccessToken.objects.get(pk=access.pk)) == _fields(access)
    assert _fields(RefreshToken.objects.get(pk=refresh.pk)) == _fields(refresh)
    # Only the checksum is stored (RFC 9700 §4), computed by DOT's own field.
    assert AccessToken.objects.get(pk=access.pk).token == "" and access.token_checksum


def test_the_refresh_token_read_loads_the_token_its_access_token_and_user_as_the_orm_does(
        issued, django_assert_num_queries):
    alice, _, access, refresh = issued
    with django_assert_num_queries(1):
        presented = refresh_token_read(refresh.token_checksum)
    assert _fields(presented) == _fields(RefreshToken.objects.get(pk=refresh.pk))
    with django_assert_num_queries(0):
        assert _fields(presented.access_token) == _fields(access)
        assert _fields(presented.user) == _fields(alice)
    assert refresh_token_read("0" * 64) is None


def test_the_refresh_token_read_brings_the_roles_the_family_context_and_the_cache_generation(
        issued, make_user, django_assert_num_queries):
    from clients.cache import _generation_read

    alice, client, _, refresh = issued
    with django_assert_num_queries(1):
        presented = refresh_token_read(refresh.token_checksum)
    assert presented.family_context is None  # the family did not start from a code
    assert presented.client_generation == _generation_read()
    with django_assert_num_queries(0):
        assert user_role_names(presented.user) == ["admin", "orders:write"]
    started = timezone.now() - timedelta(minutes=3)
    GrantContext.objects.create(code_checksum="c" * 64, client=client, sid="sid-1", auth_time=1700000000,
                                redeemed_at=started, token_family=refresh.token_family)
    assert refresh_token_read(refresh.token_checksum).family_context == (started, 1700000000, "sid-1")
    bob = make_user(username="bob")  # no role
    RefreshToken.objects.filter(pk=refresh.pk).update(user=bob)
    assert user_role_names(refresh_token_read(refresh.token_checksum).user) == []


def _rotation(alice, client, refresh, *, with_id_token: bool):
    """The rows a refresh writes: an ID token (or none), an access token and a refresh token, not yet saved."""
    id_token = IDToken(user=alice, application=client, jti=uuid.uuid4(), scope="openid",
                       expires=timezone.now() + timedelta(minutes=5)) if with_id_token else None
    access = AccessToken(user=alice, scope="openid", expires=timezone.now() + timedelta(minutes=5), id_token=id_token,
                         application=client, source_refresh_token=refresh, resource=[])
    set_token_value(access, "rotated-access-token")
    fresh = RefreshToken(user=alice, application=client, access_token=access, token_family=refresh.token_family,
                         resource=[])
    set_token_value(fresh, "rotated-refresh-token")
    return id_token, access, fresh


@pytest.mark.parametrize("with_id_token", [True, False])
def test_a_rotation_revokes_the_token_deletes_its_access_token_and_writes_the_rows_save_would(
        issued, with_id_token):
    alice, client, access, refresh = issued
    id_token, new_access, fresh = _rotation(alice, client, refresh, with_id_token=with_id_token)
    presented = refresh_token_read(refresh.token_checksum)
    assert refresh_token_rotate(presented=presented, id_token=id_token, access_token=new_access, refresh_token=fresh)
    assert not AccessToken.objects.filter(pk=access.pk).exists()
    revoked = RefreshToken.objects.get(pk=refresh.pk)
    assert revoked.revoked is not None and revoked.access_token_id is None
    assert (presented.revoked, presented.access_token) == (revoked.revoked, None)
    assert _fields(AccessToken.objects.get(pk=new_access.pk)) == _fields(new_access)
    assert _fields(RefreshToken.objects.get(pk=fresh.pk)) == _fields(fresh)
    assert fresh.access_token_id == new_access.pk and new_access.source_refresh_token_id == refresh.pk
    if with_id_token:
        assert _fields(IDToken.objects.get(pk=id_token.pk)) == _fields(id_token)
        assert new_access.id_token_id == id_token.pk
    else:
        assert new_access.id_token_id is None and not IDToken.objects.exists()


def test_a_rotation_of_a_token_no_longer_live_writes_nothing(issued):
    alice, client, access, refresh = issued
    presented = refresh_token_read(refresh.token_checksum)
    RefreshToken.objects.filter(pk=refresh.pk).update(revoked=timezone.now())  # rotated by another request meanwhile
    id_token, new_access, fresh = _rotation(alice, client, refresh, with_id_token=True)
    counts = (IDToken.objects.count(), AccessToken.objects.count(), RefreshToken.objects.count())
    assert not refresh_token_rotate(presented=presented, id_token=id_token, access_token=new_access,
                                    refresh_token=fresh)
    assert (IDToken.objects.count(), AccessToken.objects.count(), RefreshToken.objects.count()) == counts
    assert AccessToken.objects.filter(pk=access.pk).exists()  # the other rotation's business, not this one's
    assert new_access.pk is None and fresh.pk is None


def _code(alice, client, code: str = "code-1"):
    """An authorization code's Grant row and its open context."""
    grant = Grant.objects.create(user=alice, code=code, application=client, redirect_uri="https://rp.example.com/cb",
                                 scope="openid", expires=timezone.now() + timedelta(minutes=1))
    context = GrantContext.objects.create(code_checksum=token_checksum(code), client=client, sid="s", auth_time=1)
    return grant, context


def _issue(alice, client, *, with_refresh_token: bool):
    id_token = IDToken(user=alice, application=client, jti=uuid.uuid4(), scope="openid",
                       expires=timezone.now() + timedelta(minutes=5))
    access = AccessToken(user=alice, scope="openid", expires=timezone.now() + timedelta(minutes=5), id_token=id_token,
                         application=client, resource=[])
    set_token_value(access, "issued-access-token")
    fresh = None
    if with_refresh_token:
        fresh = RefreshToken(user=alice, application=client, access_token=access, token_family=uuid.uuid4(),
                             resource=[])
        set_token_value(fresh, "issued-refresh-token")
    return id_token, access, fresh


@pytest.mark.parametrize("with_refresh_token", [True, False])
def test_a_redemption_deletes_the_code_writes_the_rows_save_would_and_marks_the_context(issued, with_refresh_token):
    alice, client, _, _ = issued
    grant, context = _code(alice, client)
    id_token, access, fresh = _issue(alice, client, with_refresh_token=with_refresh_token)
    assert authorization_code_redeem(context=context, code=grant.code, client_pk=client.pk, id_token=id_token,
                                     access_token=access, refresh_token=fresh)
    assert not Grant.objects.filter(pk=grant.pk).exists()
    assert _fields(IDToken.objects.get(pk=id_token.pk)) == _fields(id_token)
    assert _fields(AccessToken.objects.get(pk=access.pk)) == _fields(access)
    assert access.id_token_id == id_token.pk
    stored = GrantContext.objects.get(pk=context.pk)
    assert stored.access_token_id == access.pk and stored.redeemed_at is not None
    if with_refresh_token:
        assert _fields(RefreshToken.objects.get(pk=fresh.pk)) == _fields(fresh)
        assert fresh.access_token_id == access.pk and stored.token_family == fresh.token_family
    else:
        assert stored.token_family is None and not RefreshToken.objects.filter(access_token=access).exists()


@pytest.mark.parametrize("meanwhile", ["redeemed", "code gone", "another client's code"])
def test_a_redemption_of_a_code_redeemed_or_gone_meanwhile_writes_nothing(issued, meanwhile):
    alice, client, _, _ = issued
    grant, context = _code(alice, client)
    client_pk = client.pk
    if meanwhile == "redeemed":
        GrantContext.objects.filter(pk=context.pk).update(redeemed_at=timezone.now())
    elif meanwhile == "code gone":
        Grant.objects.filter(pk=grant.pk).delete()
    else:
        client_pk = client_create(name="Other", client_type="confidential", grant_types=["authorization-code"],
                                  redirect_uris=["https://other.example.com/cb"], allowed_scopes=["openid"]).client.pk
    id_token, access, fresh = _issue(alice, client, with_refresh_token=True)
    counts = (IDToken.objects.count(), AccessToken.objects.count(), RefreshToken.objects.count())
    assert not authorization_code_redeem(context=context, code=grant.code, client_pk=client_pk, id_token=id_token,
                                         access_token=access, refresh_token=fresh)
    assert (IDToken.objects.count(), AccessToken.objects.count(), RefreshToken.objects.count()) == counts
    assert Grant.objects.filter(pk=grant.pk).exists() == (meanwhile != "code gone")
    assert (GrantContext.objects.get(pk=context.pk).redeemed_at is None) == (meanwhile != "redeemed")


def test_the_refresh_token_read_prefers_the_live_row_among_rows_sharing_a_checksum(issued):
    alice, client, _, refresh = issued
    revoked = RefreshToken(user=alice, application=client, token_family=refresh.token_family, resource=[],
                           revoked=timezone.now())
    set_token_value(revoked, "refresh-token-value")
    row_insert(revoked)
    assert refresh_token_read(refresh.token_checksum).pk == refresh.pk
    RefreshToken.objects.filter(pk=refresh.pk).update(revoked=timezone.now() - timedelta(minutes=1))
    assert refresh_token_read(refresh.token_checksum).pk == revoked.pk  # then the most recently revoked


def test_the_access_token_read_loads_the_token_its_client_and_user(issued, django_assert_num_queries):
    alice, client, access, _ = issued
    with django_assert_num_queries(1):
        loaded = access_token_read(access.token_checksum)
    with django_assert_num_queries(0):
        assert _fields(loaded) == _fields(access)
        assert _fields(loaded.application) == _fields(client)
        assert _fields(loaded.user) == _fields(alice)
    assert access_token_read("0" * 64) is None


def test_a_users_roles_are_read_once_per_user_instance(issued, django_assert_num_queries):
    alice, _, _, _ = issued
    with django_assert_num_queries(1):
        assert user_role_names(alice) == ["admin", "orders:write"]
        assert user_role_names(alice) == ["admin", "orders:write"]
