"""The validator's hot reads, each one plain-SQL statement (see idp/validator/rows.py for why)."""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.db import connections, router
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from clients.cache import generation_column
from clients.models import Client
from idp.claims import role_names_column, role_names_preload
from idp.models import GrantContext
from idp.tokens import token_checksum
from idp.validator.rows import RowShape, column_name, row_shape, table_name

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()


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
        return column_name(RefreshToken, name, using)

    # The presented row is chosen first, in a subquery the planner knows returns one row at most, so every join
    # after it is an index lookup whatever the tables' statistics say. Several rows may share a checksum
    # (uniqueness is (token_checksum, revoked)): the live one first, then the most recently revoked.
    presented = (
        f"SELECT * FROM {table_name(RefreshToken, using)} WHERE {column('token_checksum')} = %s "  # noqa: S608
        f"ORDER BY {column('revoked')} IS NULL DESC, {column('revoked')} DESC LIMIT 1"
    )
    generation, _ = generation_column(connections[using])
    return (
        f"SELECT {generation}, {tokens.columns}, {access.columns}, {users.columns}, {context.columns}, "  # noqa: S608
        f"{role_names_column(using, 'u.' + column_name(user_model, 'id', using))} "
        f"FROM ({presented}) rt "
        f"LEFT JOIN {table_name(AccessToken, using)} at "
        f"ON at.{column_name(AccessToken, 'id', using)} = rt.{column('access_token')} "
        f"INNER JOIN {table_name(user_model, using)} u "
        f"ON u.{column_name(user_model, 'id', using)} = rt.{column('user')} "
        # A family starts from one code at most.
        f"LEFT JOIN {table_name(GrantContext, using)} gc "
        f"ON gc.{column_name(GrantContext, 'token_family', using)} = rt.{column('token_family')}"
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
        return "at." + column_name(AccessToken, name, using)

    return (
        f"SELECT {tokens.columns}, {clients.columns}, {users.columns} "  # noqa: S608
        f"FROM {table_name(AccessToken, using)} at "
        f"LEFT JOIN {table_name(Client, using)} c ON c.{column_name(Client, 'id', using)} = {at('application')} "
        f"LEFT JOIN {table_name(user_model, using)} u ON u.{column_name(user_model, 'id', using)} = {at('user')} "
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


# The code's GrantContext while it is not redeemed: its id (NULL when there is none), then what the exchange needs.
_OPEN_CONTEXT_FIELDS = ("id", "sid", "auth_time")  # in the model's field order, as from_db() wants them


def _grant_shapes(using: str) -> list[RowShape]:
    return [*_shapes(using, (Grant, "g"), (get_user_model(), "u")),
            row_shape(GrantContext, "gc", using, _OPEN_CONTEXT_FIELDS)]


@functools.cache
def _grant_query(using: str) -> str:
    user_model = get_user_model()
    grants, users, context = _grant_shapes(using)
    generation, _ = generation_column(connections[using])

    def gc(name: str) -> str:
        return "gc." + column_name(GrantContext, name, using)

    return (
        f"SELECT {generation}, {grants.columns}, {users.columns}, {context.columns}, "  # noqa: S608
        f"{role_names_column(using, 'u.' + column_name(user_model, 'id', using))} FROM {table_name(Grant, using)} g "
        f"INNER JOIN {table_name(user_model, using)} u ON u.{column_name(user_model, 'id', using)} = "
        f"g.{column_name(Grant, 'user', using)} "
        f"LEFT JOIN {table_name(GrantContext, using)} gc ON {gc('code_checksum')} = %s AND {gc('redeemed_at')} IS NULL "
        f"WHERE g.{column_name(Grant, 'code', using)} = %s"  # unique, as is the context's code_checksum
    )


def grant_read(code: str):
    """The authorization code's Grant row, its user loaded (the user's role names too, see idp/claims.py), in one
    statement; None when there is none.

    Its `open_context` is the code's GrantContext (id, auth_time and sid loaded) while the code is not redeemed,
    else None; its `client_generation` is the client cache generation read in the same statement
    (clients/cache.py), None when that row is missing.
    """
    using = router.db_for_read(Grant)
    *shapes, context_shape = _grant_shapes(using)
    _, generation_parameter = generation_column(connections[using])
    row = _row(_grant_query(using), [generation_parameter, token_checksum(code), code], using)
    if row is None:
        return None
    generation, *row = row
    grant, user = _instances(row, shapes)
    grant.user = user
    grant.client_generation = generation
    role_names_preload(user, row[-1])
    context = context_shape.values(row[-1 - len(context_shape):-1])
    grant.open_context = (GrantContext.from_db(using, context_shape.field_names, context)
                          if context[0] is not None else None)
    return grant
