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


def _user_token_select(using: str, shapes: list[RowShape]) -> str:
    """The select list of a user token's read (idp/validator/oauth2.py): the client cache generation, each shape's
    columns, then the role names of the user joined as `u` (idp/claims.py)."""
    generation, _ = generation_column(connections[using])
    user_id = "u." + column_name(get_user_model(), "id", using)
    return ", ".join([generation, *(shape.columns for shape in shapes), role_names_column(using, user_id)])


def _user_token_read(statement: str, params: list, using: str, shapes: list[RowShape]):
    """The row of a statement selected by _user_token_select: (client cache generation, the instances of every shape
    but the last, ending with the user, whose role names are preloaded, and the last shape's values); None when
    there is no row. The last shape is a LEFT JOINed GrantContext, whose first value is NULL when none matched."""
    _, generation_parameter = generation_column(connections[using])
    row = _row(statement, [generation_parameter, *params], using)
    if row is None:
        return None
    generation, *columns = row
    *instance_shapes, context_shape = shapes
    instances = _instances(columns, instance_shapes)
    role_names_preload(instances[-1], columns[-1])
    return generation, instances, context_shape.values(columns[-1 - len(context_shape):-1])


# The code a refresh-token family started from: its id (NULL when the family did not start from one), then what the
# refresh needs of it.
_FAMILY_CONTEXT_FIELDS = ("id", "redeemed_at", "auth_time", "sid")


def _refresh_token_shapes(using: str) -> list[RowShape]:
    return [*_shapes(using, (RefreshToken, "rt"), (AccessToken, "at"), (get_user_model(), "u")),
            row_shape(GrantContext, "gc", using, _FAMILY_CONTEXT_FIELDS)]


@functools.cache
def _refresh_token_query(using: str) -> str:
    user_model = get_user_model()

    def column(name: str) -> str:
        return column_name(RefreshToken, name, using)

    # The presented row is chosen first, in a subquery the planner knows returns one row at most, so every join
    # after it is an index lookup whatever the tables' statistics say. Several rows may share a checksum
    # (uniqueness is (token_checksum, revoked)): the live one first, then the most recently revoked.
    presented = (
        f"SELECT * FROM {table_name(RefreshToken, using)} WHERE {column('token_checksum')} = %s "  # noqa: S608
        f"ORDER BY {column('revoked')} IS NULL DESC, {column('revoked')} DESC LIMIT 1"
    )
    return (
        f"SELECT {_user_token_select(using, _refresh_token_shapes(using))} FROM ({presented}) rt "  # noqa: S608
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
    read = _user_token_read(_refresh_token_query(using), [checksum], using, _refresh_token_shapes(using))
    if read is None:
        return None
    generation, (presented, access_token, user), context = read
    presented.access_token, presented.user = access_token, user
    presented.client_generation = generation
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

    def gc(name: str) -> str:
        return "gc." + column_name(GrantContext, name, using)

    return (
        f"SELECT {_user_token_select(using, _grant_shapes(using))} FROM {table_name(Grant, using)} g "  # noqa: S608
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
    shapes = _grant_shapes(using)
    read = _user_token_read(_grant_query(using), [token_checksum(code), code], using, shapes)
    if read is None:
        return None
    generation, (grant, user), context = read
    grant.user = user
    grant.client_generation = generation
    grant.open_context = (GrantContext.from_db(using, shapes[-1].field_names, context)
                          if context[0] is not None else None)
    return grant
