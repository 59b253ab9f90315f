"""The validator's hot reads and writes as single plain-SQL statements (see idp/validator/rows.py for why)."""

from __future__ import annotations

import functools
import uuid

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from clients.models import Client
from idp.models import GrantContext
from idp.validator.rows import RowShape, row_shape

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()


def _column(model, name: str, using: str) -> str:
    return connections[using].ops.quote_name(model._meta.get_field(name).column)


def _table(model, using: str) -> str:
    return connections[using].ops.quote_name(model._meta.db_table)


def _shapes(using: str, *models: tuple) -> list[RowShape]:
    return [row_shape(model, alias, using) for model, alias in models]


def _joined_read(statement: str, params: list, using: str, shapes: list[RowShape]) -> list | None:
    """The instances of one row of joined tables, one per shape in column order (None where a LEFT JOIN matched
    nothing); None when there is no row."""
    with connections[using].cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for shape in shapes:
        columns = row[start:start + len(shape)]
        start += len(shape)
        instances.append(shape.instance(columns) if columns[0] is not None else None)
    return instances


def _refresh_token_shapes(using: str) -> list[RowShape]:
    return _shapes(using, (RefreshToken, "rt"), (AccessToken, "at"), (get_user_model(), "u"))


@functools.cache
def _refresh_token_query(using: str) -> str:
    user_model = get_user_model()
    tokens, access, users = _refresh_token_shapes(using)

    def rt(name: str) -> str:
        return "rt." + _column(RefreshToken, name, using)

    return (
        f"SELECT {tokens.columns}, {access.columns}, {users.columns} "  # noqa: S608
        f"FROM {_table(RefreshToken, using)} rt "
        f"LEFT JOIN {_table(AccessToken, using)} at ON at.{_column(AccessToken, 'id', using)} = {rt('access_token')} "
        f"INNER JOIN {_table(user_model, using)} u ON u.{_column(user_model, 'id', using)} = {rt('user')} "
        # Several rows may share a checksum (uniqueness is (token_checksum, revoked)): the live one first, then the
        # most recently revoked.
        f"WHERE {rt('token_checksum')} = %s ORDER BY {rt('revoked')} IS NULL DESC, {rt('revoked')} DESC LIMIT 1"
    )


def refresh_token_read(checksum: str):
    """The refresh-token row with this checksum (the live one when there is one), its access token and user
    loaded, in one statement; None when there is none."""
    using = router.db_for_read(RefreshToken)
    read = _joined_read(_refresh_token_query(using), [checksum], using, _refresh_token_shapes(using))
    if read is None:
        return None
    presented, access_token, user = read
    presented.access_token, presented.user = access_token, user
    return presented


_CONTEXT_FIELDS = ("redeemed_at", "auth_time", "sid")


@functools.cache
def _family_context_query(using: str) -> str:
    columns = ", ".join(_column(GrantContext, name, using) for name in _CONTEXT_FIELDS)
    return (f"SELECT {columns} FROM {_table(GrantContext, using)} "  # noqa: S608
            f"WHERE {_column(GrantContext, 'token_family', using)} = %s LIMIT 1")


def family_context_read(token_family: uuid.UUID) -> tuple | None:
    """(redeemed_at, auth_time, sid) of the authorization code a refresh-token family started from; None when the
    family did not start from a code (a family starts from one code at most)."""
    using = router.db_for_read(GrantContext)
    connection = connections[using]
    family = GrantContext._meta.get_field("token_family").get_db_prep_value(token_family, connection)
    with connection.cursor() as cursor:
        cursor.execute(_family_context_query(using), [family])
        row = cursor.fetchone()
    return tuple(row_shape(GrantContext, "", using, _CONTEXT_FIELDS).values(row)) if row is not None else None


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
