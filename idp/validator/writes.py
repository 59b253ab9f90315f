"""The token responses' writes: a refresh token's rotation and an authorization code's redemption, each one
statement on PostgreSQL and a transaction elsewhere (see idp/validator/rows.py for why plain SQL)."""

from __future__ import annotations

import functools

from django.db import connections, router, transaction
from django.db.models import Model
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from idp.models import GrantContext
from idp.validator.rows import column_name, insert_fields, insert_values, mark_inserted, row_insert, table_name

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
IDToken = get_id_token_model()


def _in_one_statement(using: str) -> bool:
    # PostgreSQL runs data-modifying WITH queries; SQLite does not.
    return connections[using].vendor == "postgresql"


# --- The tokens one response issues ---------------------------------------------------------------------------------


def _insert_from(model: type[Model], source: str, linked: dict[str, str], using: str) -> str:
    """INSERT of one `model` row per row of `source`: the `linked` fields' values are the SQL expressions given (a
    key another query of the same WITH returns), every other field's is a parameter, in insert_fields order."""
    quote = connections[using].ops.quote_name
    columns = ", ".join(quote(field.column) for field in insert_fields(model))
    values = ", ".join(linked.get(field.name, "%s") for field in insert_fields(model))
    return (f"INSERT INTO {table_name(model, using)} ({columns}) SELECT {values} FROM {source} "  # noqa: S608
            f"RETURNING {quote(model._meta.pk.column)}")


def _issue_queries(source: str, *, with_id_token: bool, with_refresh_token: bool, using: str) -> tuple[list, str]:
    """The WITH queries inserting the tokens of one response, one row each per row of `source` (so none when it has
    none): the ID token if any, the access token linked to it, the refresh token if any linked to the access token;
    and the final SELECT of their keys, one row, or none when nothing was inserted."""
    access_id = column_name(AccessToken, "id", using)
    queries, access_links, id_token_id, refresh_token_id = [], {}, "NULL", "NULL"
    if with_id_token:
        queries.append(f"id_token AS ({_insert_from(IDToken, source, {}, using)})")
        id_token_id = access_links["id_token"] = f"(SELECT {column_name(IDToken, 'id', using)} FROM id_token)"  # noqa: S608
    queries.append(f"access AS ({_insert_from(AccessToken, source, access_links, using)})")
    if with_refresh_token:
        refresh_links = {"access_token": f"access.{access_id}"}
        queries.append(f"fresh AS ({_insert_from(RefreshToken, 'access', refresh_links, using)})")
        refresh_token_id = f"(SELECT {column_name(RefreshToken, 'id', using)} FROM fresh)"  # noqa: S608
    return queries, f"SELECT {id_token_id}, access.{access_id}, {refresh_token_id} FROM access"  # noqa: S608


def _issue_parameters(id_token, access_token, refresh_token, using: str) -> list:
    """The parameters of _issue_queries, in their order: every field's value but the links."""
    def unlinked(model: type[Model], link: str, linked: bool) -> tuple:
        return tuple(field for field in insert_fields(model) if not (linked and field.name == link))

    parameters = []
    if id_token is not None:
        parameters += insert_values(id_token, insert_fields(IDToken), using)
    parameters += insert_values(access_token, unlinked(AccessToken, "id_token", id_token is not None), using)
    if refresh_token is not None:
        parameters += insert_values(refresh_token, unlinked(RefreshToken, "access_token", True), using)
    return parameters


def _issued(keys: tuple, id_token, access_token, refresh_token, using: str) -> None:
    """The instances as their INSERTs left them: keys set and linked to each other."""
    id_token_pk, access_token_pk, refresh_token_pk = keys
    if id_token is not None:
        access_token.id_token = mark_inserted(id_token, id_token_pk, using)
    mark_inserted(access_token, access_token_pk, using)
    if refresh_token is not None:
        refresh_token.access_token = access_token
        mark_inserted(refresh_token, refresh_token_pk, using)


def _issue_one_by_one(id_token, access_token, refresh_token) -> None:
    if id_token is not None:
        access_token.id_token = row_insert(id_token)
    row_insert(access_token)
    if refresh_token is not None:
        refresh_token.access_token = access_token
        row_insert(refresh_token)


# --- Refresh-token rotation -----------------------------------------------------------------------------------------


@functools.cache
def _revoke_statement(using: str) -> str:
    # `updated` is auto_now, which an UPDATE does not set by itself (as in RefreshToken.revoke_family). Clearing the
    # pointer to the access token is what the ORM's SET_NULL would do before that token's row is deleted.
    def column(name: str) -> str:
        return column_name(RefreshToken, name, using)

    return (f"UPDATE {table_name(RefreshToken, using)} SET {column('revoked')} = %s, "  # noqa: S608
            f"{column('updated')} = %s, {column('access_token')} = NULL "
            f"WHERE {column('id')} = %s AND {column('revoked')} IS NULL")


@functools.cache
def _access_token_delete_statement(using: str) -> str:
    return (f"DELETE FROM {table_name(AccessToken, using)} "  # noqa: S608
            f"WHERE {column_name(AccessToken, 'id', using)} = %s")


@functools.cache
def _rotation_statement(using: str, with_id_token: bool) -> str:
    """The whole rotation as one statement. Every write hangs on `revoked`, the UPDATE of the presented token: when
    it matches no row (the token is no longer live) nothing is deleted or inserted and no row is returned."""
    queries, select = _issue_queries("revoked", with_id_token=with_id_token, with_refresh_token=True, using=using)
    return (
        f"WITH revoked AS ({_revoke_statement(using)} RETURNING {column_name(RefreshToken, 'id', using)}), "  # noqa: S608
        f"gone AS ({_access_token_delete_statement(using)} AND EXISTS (SELECT 1 FROM revoked)), "
        f"{', '.join(queries)} {select}"
    )


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
    if _in_one_statement(using):
        with connection.cursor() as cursor:
            cursor.execute(_rotation_statement(using, id_token is not None), [
                *revocation, presented.access_token_id,
                *_issue_parameters(id_token, access_token, refresh_token, using)])
            keys = cursor.fetchone()
        if keys is None:
            return False
        _issued(keys, id_token, access_token, refresh_token, using)
    else:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(_revoke_statement(using), revocation)
            if cursor.rowcount != 1:
                return False
            if presented.access_token_id is not None:
                cursor.execute(_access_token_delete_statement(using), [presented.access_token_id])
            _issue_one_by_one(id_token, access_token, refresh_token)
    presented.revoked, presented.updated, presented.access_token = now, now, None
    return True


# --- Authorization-code redemption ----------------------------------------------------------------------------------


@functools.cache
def _grant_delete_statement(using: str) -> str:
    return (f"DELETE FROM {table_name(Grant, using)} WHERE {column_name(Grant, 'code', using)} = %s "  # noqa: S608
            f"AND {column_name(Grant, 'application', using)} = %s")


def grant_delete(*, code: str, client_pk: int) -> int:
    """Delete the client's authorization code, in one statement: how many rows went (0 or 1).

    Not `QuerySet.delete()`, which wraps even a single fast DELETE in a transaction of its own: a BEGIN and a
    COMMIT, two round trips more. Nothing refers to a Grant row and nothing listens for its signals, so the one
    statement is the whole deletion."""
    using = router.db_for_write(Grant)
    with connections[using].cursor() as cursor:
        cursor.execute(_grant_delete_statement(using), [code, client_pk])
        return cursor.rowcount


def _context_column(name: str, using: str) -> str:
    return column_name(GrantContext, name, using)


@functools.cache
def _redemption_statement(using: str, with_id_token: bool, with_refresh_token: bool, with_code: bool) -> str:
    """The whole redemption as one statement. `open` locks the code's context while it is not redeemed; the code
    is deleted only then, the tokens are inserted only when it was, and the context is marked redeemed with them.
    When either is gone (another exchange got there first) nothing is written and no row is returned."""
    context_id, redeemed_at = _context_column("id", using), _context_column("redeemed_at", using)
    context = table_name(GrantContext, using)
    queries = [f"open AS (SELECT {context_id} FROM {context} WHERE {context_id} = %s "  # noqa: S608
               f"AND {redeemed_at} IS NULL FOR UPDATE)"]
    if with_code:
        queries.append(f"gone AS ({_grant_delete_statement(using)} AND EXISTS (SELECT 1 FROM open) "  # noqa: S608
                       f"RETURNING {column_name(Grant, 'id', using)})")
    issue, select = _issue_queries("gone" if with_code else "open", with_id_token=with_id_token,
                                   with_refresh_token=with_refresh_token, using=using)
    queries += issue
    queries.append(
        f"redeemed AS (UPDATE {context} SET {redeemed_at} = %s, {_context_column('token_family', using)} = %s, "  # noqa: S608
        f"{_context_column('access_token_id', using)} = (SELECT {column_name(AccessToken, 'id', using)} FROM access) "
        f"WHERE {context_id} IN (SELECT {context_id} FROM open) AND EXISTS (SELECT 1 FROM access))"
    )
    return f"WITH {', '.join(queries)} {select}"


_REDEEMED_FIELDS = ("redeemed_at", "token_family", "access_token_id")


class _RedeemedMeanwhile(Exception):
    """A concurrent exchange redeemed the code first; raised to roll back what this one wrote."""


@functools.cache
def _context_redeem_statement(using: str) -> str:
    assignments = ", ".join(f"{_context_column(name, using)} = %s" for name in _REDEEMED_FIELDS)
    return (f"UPDATE {table_name(GrantContext, using)} SET {assignments} "  # noqa: S608
            f"WHERE {_context_column('id', using)} = %s AND {_context_column('redeemed_at', using)} IS NULL")


def authorization_code_redeem(*, context: GrantContext, code: str | None, client_pk: int, id_token, access_token,
                              refresh_token) -> bool:
    """Delete the client's authorization code and write the tokens issued for it (the ID token and the refresh
    token when not None), marking its `context` redeemed with them (a replay of the code revokes them); False, and
    nothing written, when the code was redeemed already or is gone. A sign-in's context (idp/api/services.py) has
    no code: `code` is None and only the context is redeemed with the tokens.

    Of two exchanges of one code at once exactly one gets True: the context's row lock makes the other wait until
    the first has committed, then find the code redeemed (RFC 6749 §4.1.2). On PostgreSQL this is one statement,
    with no BEGIN or COMMIT round trip around it; elsewhere, the same writes one by one in a transaction.
    """
    using = router.db_for_write(GrantContext)
    connection = connections[using]
    now = timezone.now()
    family = refresh_token.token_family if refresh_token is not None else None
    if _in_one_statement(using):
        statement = _redemption_statement(using, id_token is not None, refresh_token is not None, code is not None)
        redeemed = [GrantContext._meta.get_field(name).get_db_prep_save(value, connection)
                    for name, value in (("redeemed_at", now), ("token_family", family))]
        with connection.cursor() as cursor:
            cursor.execute(statement, [context.pk, *([code, client_pk] if code is not None else []),
                                       *_issue_parameters(id_token, access_token, refresh_token, using), *redeemed])
            keys = cursor.fetchone()
        if keys is None:
            return False
        _issued(keys, id_token, access_token, refresh_token, using)
    else:
        try:
            with transaction.atomic(using=using):
                if code is not None and not grant_delete(code=code, client_pk=client_pk):
                    return False
                _issue_one_by_one(id_token, access_token, refresh_token)
                values = [GrantContext._meta.get_field(name).get_db_prep_save(value, connection)
                          for name, value in zip(_REDEEMED_FIELDS, (now, family, access_token.pk), strict=True)]
                with connection.cursor() as cursor:
                    cursor.execute(_context_redeem_statement(using), [*values, context.pk])
                    if cursor.rowcount != 1:
                        raise _RedeemedMeanwhile
        except _RedeemedMeanwhile:  # the code's deletion and the tokens rolled back with it
            return False
    context.redeemed_at, context.token_family, context.access_token_id = now, family, access_token.pk
    return True
