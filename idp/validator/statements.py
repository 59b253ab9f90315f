"""The validator's hot reads and writes as single plain-SQL statements (see idp/validator/rows.py for why)."""

from __future__ import annotations

import functools
import uuid

from django.contrib.auth import get_user_model
from django.db import connections, router, transaction
from django.db.models import Model
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from clients.cache import generation_column
from clients.models import Client
from idp.claims import role_names_column, role_names_preload
from idp.models import GrantContext
from idp.validator.rows import RowShape, insert_fields, insert_values, mark_inserted, row_insert, row_shape

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
IDToken = get_id_token_model()


def _column(model, name: str, using: str) -> str:
    return connections[using].ops.quote_name(model._meta.get_field(name).column)


def _table(model, using: str) -> str:
    return connections[using].ops.quote_name(model._meta.db_table)


def _shapes(using: str, *models: tuple) -> list[RowShape]:
    return [row_shape(model, alias, using) for model, alias in models]


def _row(statement: str, params: list, using: str) -> tuple | None:
    with connections[using].cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()


def _instances(row: tuple, shapes: list[RowShape]) -> list:
    """The instances of one row of joined tables, one per shape in column order (None where a LEFT JOIN matched
    nothing)."""
    instances, start = [], 0
    for shape in shapes:
        columns = row[start:start + len(shape)]
        start += len(shape)
        instances.append(shape.instance(columns) if columns[0] is not None else None)
    return instances


def _joined_read(statement: str, params: list, using: str, shapes: list[RowShape]) -> list | None:
    """The instances of the one row of joined tables the statement returns (see _instances); None when there is no
    row."""
    row = _row(statement, params, using)
    return _instances(row, shapes) if row is not None else None


# The code a refresh-token family started from: its id (NULL when the family did not start from one), then what the
# refresh needs of it.
_FAMILY_CONTEXT_FIELDS = ("id", "redeemed_at", "auth_time", "sid")


def _refresh_token_shapes(using: str) -> list[RowShape]:
    return [*_shapes(using, (RefreshToken, "rt"), (AccessToken, "at"), (get_user_model(), "u")),
            row_shape(GrantContext, "gc", using, _FAMILY_CONTEXT_FIELDS)]


@functools.cache
def _refresh_token_query(using: str) -> str:
    user_model = get_user_model()
    tokens, access, users, context = _refresh_token_shapes(using)

    def column(name: str) -> str:
        return _column(RefreshToken, name, using)

    # The presented row is chosen first, in a subquery the planner knows returns one row at most, so every join
    # after it is an index lookup whatever the tables' statistics say. Several rows may share a checksum
    # (uniqueness is (token_checksum, revoked)): the live one first, then the most recently revoked.
    presented = (
        f"SELECT * FROM {_table(RefreshToken, using)} WHERE {column('token_checksum')} = %s "  # noqa: S608
        f"ORDER BY {column('revoked')} IS NULL DESC, {column('revoked')} DESC LIMIT 1"
    )
    generation, _ = generation_column(connections[using])
    return (
        f"SELECT {generation}, {tokens.columns}, {access.columns}, {users.columns}, {context.columns}, "  # noqa: S608
        f"{role_names_column(using, 'u.' + _column(user_model, 'id', using))} "
        f"FROM ({presented}) rt "
        f"LEFT JOIN {_table(AccessToken, using)} at "
        f"ON at.{_column(AccessToken, 'id', using)} = rt.{column('access_token')} "
        f"INNER JOIN {_table(user_model, using)} u ON u.{_column(user_model, 'id', using)} = rt.{column('user')} "
        # A family starts from one code at most.
        f"LEFT JOIN {_table(GrantContext, using)} gc "
        f"ON gc.{_column(GrantContext, 'token_family', using)} = rt.{column('token_family')}"
    )


def refresh_token_read(checksum: str):
    """The refresh-token row with this checksum (the live one when there is one), its access token and user
    loaded (the user's role names too, see idp/claims.py), in one statement; None when there is none.

    Its `family_context` is (redeemed_at, auth_time, sid) of the authorization code its family started from, or
    None when the family did not start from a code; its `client_generation` is the client cache generation read in
    the same statement (clients/cache.py), None when that row is missing.
    """
    using = router.db_for_read(RefreshToken)
    *shapes, context_shape = _refresh_token_shapes(using)
    _, generation_parameter = generation_column(connections[using])
    row = _row(_refresh_token_query(using), [generation_parameter, checksum], using)
    if row is None:
        return None
    generation, *row = row
    presented, access_token, user = _instances(row, shapes)
    presented.access_token, presented.user = access_token, user
    presented.client_generation = generation
    context = context_shape.values(row[-1 - len(context_shape):-1])
    role_names_preload(user, row[-1])
    presented.family_context = tuple(context[1:]) if context[0] is not None else None
    return presented


def _access_token_shapes(using: str) -> list[RowShape]:
    return _shapes(using, (AccessToken, "at"), (Client, "c"), (get_user_model(), "u"))


@functools.cache
def _access_token_query(using: str) -> str:
    user_model = get_user_model()
    tokens, clients, users = _access_token_shapes(using)

    def at(name: str) -> str:
        return "at." + _column(AccessToken, name, using)

    return (
        f"SELECT {tokens.columns}, {clients.columns}, {users.columns} "  # noqa: S608
        f"FROM {_table(AccessToken, using)} at "
        f"LEFT JOIN {_table(Client, using)} c ON c.{_column(Client, 'id', using)} = {at('application')} "
        f"LEFT JOIN {_table(user_model, using)} u ON u.{_column(user_model, 'id', using)} = {at('user')} "
        f"WHERE {at('token_checksum')} = %s"  # unique
    )


def access_token_read(checksum: str):
    """The access-token row with this checksum, its client and user loaded, in one statement; None when there is
    none."""
    using = router.db_for_read(AccessToken)
    read = _joined_read(_access_token_query(using), [checksum], using, _access_token_shapes(using))
    if read is None:
        return None
    access_token, client, user = read
    access_token.application, access_token.user = client, user
    return access_token


def _grant_shapes(using: str) -> list[RowShape]:
    return _shapes(using, (Grant, "g"), (get_user_model(), "u"))


@functools.cache
def _grant_query(using: str) -> str:
    user_model = get_user_model()
    grants, users = _grant_shapes(using)
    return (
        f"SELECT {grants.columns}, {users.columns} FROM {_table(Grant, using)} g "  # noqa: S608
        f"INNER JOIN {_table(user_model, using)} u ON u.{_column(user_model, 'id', using)} = "
        f"g.{_column(Grant, 'user', using)} WHERE g.{_column(Grant, 'code', using)} = %s"  # unique
    )


def grant_read(code: str):
    """The authorization code's Grant row, its user loaded, in one statement; None when there is none."""
    using = router.db_for_read(Grant)
    read = _joined_read(_grant_query(using), [code], using, _grant_shapes(using))
    if read is None:
        return None
    grant, user = read
    grant.user = user
    return grant


_OPEN_CONTEXT_FIELDS = ("id", "auth_time", "sid")


@functools.cache
def _open_context_query(using: str) -> str:
    columns = ", ".join(_column(GrantContext, name, using) for name in _OPEN_CONTEXT_FIELDS)
    return (
        f"SELECT {columns} FROM {_table(GrantContext, using)} "  # noqa: S608
        f"WHERE {_column(GrantContext, 'code_checksum', using)} = %s "  # unique
        f"AND {_column(GrantContext, 'redeemed_at', using)} IS NULL"
    )


def open_grant_context_read(code_checksum: str) -> GrantContext | None:
    """The GrantContext of a code not redeemed yet, with its id, auth_time and sid loaded; None when there is none."""
    using = router.db_for_read(GrantContext)
    with connections[using].cursor() as cursor:
        cursor.execute(_open_context_query(using), [code_checksum])
        row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip(_OPEN_CONTEXT_FIELDS, row_shape(GrantContext, "", using, _OPEN_CONTEXT_FIELDS).values(row),
                      strict=True))
    names = [field.attname for field in GrantContext._meta.concrete_fields if field.attname in values]
    return GrantContext.from_db(using, names, [values[name] for name in names])  # in the model's field order


_REDEEMED_FIELDS = ("redeemed_at", "token_family", "access_token_id")


@functools.cache
def _redeem_statement(using: str) -> str:
    assignments = ", ".join(f"{_column(GrantContext, name, using)} = %s" for name in _REDEEMED_FIELDS)
    return (f"UPDATE {_table(GrantContext, using)} SET {assignments} "  # noqa: S608
            f"WHERE {_column(GrantContext, 'id', using)} = %s "
            f"AND {_column(GrantContext, 'redeemed_at', using)} IS NULL")


def grant_context_redeem(*, context_id: int, token_family: uuid.UUID | None, access_token_id: int | None) -> bool:
    """Mark a code's GrantContext redeemed now, remembering the tokens issued from it (a replay revokes them).
    False when it was redeemed already: by a concurrent exchange of the same code, which committed first (on
    PostgreSQL this statement waits for that one's row lock, then finds the row no longer open)."""
    using = router.db_for_write(GrantContext)
    connection = connections[using]
    values = [GrantContext._meta.get_field(name).get_db_prep_save(value, connection)
              for name, value in zip(_REDEEMED_FIELDS, (timezone.now(), token_family, access_token_id), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_redeem_statement(using), [*values, context_id])
        return cursor.rowcount == 1


@functools.cache
def _grant_delete_statement(using: str) -> str:
    return (f"DELETE FROM {_table(Grant, using)} WHERE {_column(Grant, 'code', using)} = %s "  # noqa: S608
            f"AND {_column(Grant, 'application', using)} = %s")


def grant_delete(*, code: str, client_pk: int) -> int:
    """Delete the client's authorization code, in one statement: how many rows went (0 or 1).

    Not `QuerySet.delete()`, which wraps even a single fast DELETE in a transaction of its own: a BEGIN and a
    COMMIT, two round trips more on every code exchange. Nothing refers to a Grant row and nothing listens for its
    signals, so the one statement is the whole deletion."""
    using = router.db_for_write(Grant)
    with connections[using].cursor() as cursor:
        cursor.execute(_grant_delete_statement(using), [code, client_pk])
        return cursor.rowcount


@functools.cache
def _revoke_statement(using: str) -> str:
    # `updated` is auto_now, which an UPDATE does not set by itself (as in RefreshToken.revoke_family). Clearing the
    # pointer to the access token is what the ORM's SET_NULL would do before that token's row is deleted.
    def column(name: str) -> str:
        return _column(RefreshToken, name, using)

    return (f"UPDATE {_table(RefreshToken, using)} SET {column('revoked')} = %s, {column('updated')} = %s, "  # noqa: S608
            f"{column('access_token')} = NULL WHERE {column('id')} = %s AND {column('revoked')} IS NULL")


@functools.cache
def _delete_statement(using: str) -> str:
    return f"DELETE FROM {_table(AccessToken, using)} WHERE {_column(AccessToken, 'id', using)} = %s"  # noqa: S608


def _insert_from(model: type[Model], source: str, linked: dict[str, str], using: str) -> str:
    """INSERT of one `model` row per row of `source`: the `linked` fields' values are the SQL expressions given (a
    key another statement of the same WITH returns), every other field's is a parameter, in insert_fields order."""
    quote = connections[using].ops.quote_name
    fields = insert_fields(model)
    columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(linked.get(field.name, "%s") for field in fields)
    return (f"INSERT INTO {_table(model, using)} ({columns}) SELECT {values} FROM {source} "  # noqa: S608
            f"RETURNING {quote(model._meta.pk.column)}")


@functools.cache
def _rotation_statement(using: str, with_id_token: bool) -> str:
    """The whole rotation as one PostgreSQL statement of data-modifying WITH queries, atomic without a transaction.

    Every write hangs on `revoked`, the UPDATE of the presented token: when it matches no row (the token is no
    longer live) nothing is deleted or inserted and the statement returns no row.
    """
    access_id = _column(AccessToken, "id", using)
    parts = [
        f"revoked AS ({_revoke_statement(using)} RETURNING {_column(RefreshToken, 'id', using)})",
        f"gone AS ({_delete_statement(using)} AND EXISTS (SELECT 1 FROM revoked))",  # noqa: S608
    ]
    access_links, id_token_id = {}, "NULL"
    if with_id_token:
        parts.append(f"id_token AS ({_insert_from(IDToken, 'revoked', {}, using)})")
        id_token_id = access_links["id_token"] = f"(SELECT {_column(IDToken, 'id', using)} FROM id_token)"  # noqa: S608
    parts.append(f"access AS ({_insert_from(AccessToken, 'revoked', access_links, using)})")
    refresh_links = {"access_token": f"access.{access_id}"}
    parts.append(f"fresh AS ({_insert_from(RefreshToken, 'access', refresh_links, using)})")
    return (f"WITH {', '.join(parts)} SELECT {id_token_id}, access.{access_id}, "  # noqa: S608
            f"fresh.{_column(RefreshToken, 'id', using)} FROM access, fresh")


def _linked_out(model: type[Model], *names: str) -> tuple:
    return tuple(field for field in insert_fields(model) if field.name not in names)


def refresh_token_rotate(*, presented, id_token, access_token, refresh_token) -> bool:
    """Replace the live refresh token `presented` (read with its access token) by the new `refresh_token`, whose
    `access_token` and, when not None, `id_token` are written with it; False, and nothing written, when `presented`
    is no longer live.

    The revocation only applies to a live token and locks its row, so of two requests rotating the same token at
    once exactly one gets True: the other waits for the first to commit, then finds the token revoked and writes
    nothing. Locks are taken refresh token first, then access token, the order RefreshToken.revoke_family uses, so a
    concurrent family revocation cannot deadlock with this. The access token deleted is the one `presented` was read
    with: a live refresh token's access token only changes by being deleted (its pointer set to NULL), and then the
    DELETE finds nothing.

    On PostgreSQL this is one statement, with no BEGIN or COMMIT round trip around it; elsewhere, the same writes
    one by one in a transaction.
    """
    using = router.db_for_write(RefreshToken)
    connection = connections[using]
    now = timezone.now()
    stamp = RefreshToken._meta.get_field("revoked").get_db_prep_save(now, connection)
    revocation = [stamp, stamp, presented.pk]
    if connection.vendor == "postgresql":
        params = [*revocation, presented.access_token_id]
        if id_token is not None:
            params += insert_values(id_token, insert_fields(IDToken), using)
            access_fields = _linked_out(AccessToken, "id_token")
        else:
            access_fields = insert_fields(AccessToken)
        params += insert_values(access_token, access_fields, using)
        params += insert_values(refresh_token, _linked_out(RefreshToken, "access_token"), using)
        with connection.cursor() as cursor:
            cursor.execute(_rotation_statement(using, id_token is not None), params)
            written = cursor.fetchone()
        if written is None:
            return False
        id_token_pk, access_token_pk, refresh_token_pk = written
        if id_token is not None:
            access_token.id_token = mark_inserted(id_token, id_token_pk, using)
        refresh_token.access_token = mark_inserted(access_token, access_token_pk, using)
        mark_inserted(refresh_token, refresh_token_pk, using)
    else:
        with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
            cursor.execute(_revoke_statement(using), revocation)
            if cursor.rowcount != 1:
                return False
            if presented.access_token_id is not None:
                cursor.execute(_delete_statement(using), [presented.access_token_id])
            if id_token is not None:
                access_token.id_token = row_insert(id_token)
            refresh_token.access_token = row_insert(access_token)
            row_insert(refresh_token)
    presented.revoked, presented.updated, presented.access_token = now, now, None
    return True
