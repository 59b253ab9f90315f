"""Revoking tokens: a refresh-token family and the access tokens issued from it, or one rotated refresh token."""

from __future__ import annotations

import functools
import uuid

from django.db import connections, router, transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


@transaction.atomic
def revoke_token_family(*, token_family: uuid.UUID | None, access_token_id: int | None = None) -> None:
    """Revoke every refresh token of the family and delete the access-token rows issued from it.

    JWT access tokens already handed out stay verifiable at resource servers that only check signatures until
    they expire; that is why their lifetime is short. Introspection and userinfo refuse them at once.
    """
    RefreshToken.revoke_family(token_family)  # also deletes the family's access-token rows; no-op for None
    if access_token_id is not None:
        AccessToken.objects.filter(pk=access_token_id).delete()


@functools.cache
def _rotation_statements(using: str) -> tuple[str, str]:
    # Plain SQL built from the models' names: these run on every refresh, where the ORM's compiling of them (and
    # its delete collector's extra read and update) cost more than the statements.
    quote = connections[using].ops.quote_name
    refresh, access = RefreshToken._meta, AccessToken._meta

    def column(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    revoke = (
        f"UPDATE {quote(refresh.db_table)} SET {column(refresh, 'revoked')} = %s, "  # noqa: S608
        f"{column(refresh, 'updated')} = %s, {column(refresh, 'access_token')} = NULL "
        f"WHERE {column(refresh, 'id')} = %s AND {column(refresh, 'revoked')} IS NULL"
    )
    delete = f"DELETE FROM {quote(access.db_table)} WHERE {column(access, 'id')} = %s"  # noqa: S608
    return revoke, delete


@transaction.atomic(savepoint=False)  # the caller's transaction holds the lock until the new pair is committed
def revoke_rotated_refresh_token(*, refresh_token) -> bool:
    """Revoke a live refresh token that a refresh is replacing and delete its access token's row; False (nothing
    written) when it is no longer live.

    The UPDATE locks the row and only applies to a live one, so of two requests rotating the same token at once
    exactly one gets True: the other waits for the first to commit, then finds the token revoked and updates
    nothing. Locks are taken refresh token first, then access token, the order RefreshToken.revoke_family uses, so a
    concurrent family revocation cannot deadlock with this. The access token is the one `refresh_token` was read
    with: a live refresh token's access token only changes by being deleted (its pointer set to NULL), and then the
    DELETE finds nothing. The refresh token's own pointer, the one row that refers to an access token, is cleared
    by the UPDATE, which is what the ORM's SET_NULL would do.
    """
    using = router.db_for_write(RefreshToken)
    connection = connections[using]
    revoke, delete = _rotation_statements(using)
    now = timezone.now()
    # `updated` is auto_now, which an UPDATE does not set by itself (as in RefreshToken.revoke_family).
    stamp = RefreshToken._meta.get_field("revoked").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(revoke, [stamp, stamp, refresh_token.pk])
        if cursor.rowcount != 1:
            return False
        if refresh_token.access_token_id is not None:
            cursor.execute(delete, [refresh_token.access_token_id])
    refresh_token.revoked, refresh_token.updated, refresh_token.access_token = now, now, None
    return True
