"""Claims of access tokens (RFC 9068), ID tokens and userinfo (OpenID Connect Core), built in one place."""

from __future__ import annotations

import functools
import json
import uuid

from django.db import connections, router

from accounts.models import Role, User
from idp.constants import SCOPE_EMAIL, SCOPE_PROFILE, SCOPE_ROLES


def _role_names_from(using: str, user: str) -> str:
    # Plain SQL built from the models' names: this read is paid on every user token, and the ORM's compiling of
    # the join costs more than running it.
    quote = connections[using].ops.quote_name
    link = User.roles.through._meta

    def column(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    return (
        f"FROM {quote(Role._meta.db_table)} r "  # noqa: S608
        f"INNER JOIN {quote(link.db_table)} l ON l.{column(link, 'role')} = r.{column(Role._meta, 'id')} "
        f"WHERE l.{column(link, 'user')} = {user}"
    )


@functools.cache
def _role_names_query(using: str) -> str:
    name = connections[using].ops.quote_name(Role._meta.get_field("name").column)
    return f"SELECT r.{name} {_role_names_from(using, '%s')}"


@functools.cache
def role_names_column(using: str, user_id: str) -> str:
    """A scalar subquery giving the role names of the user whose id is the SQL expression `user_id`, as a JSON
    array; a read of the user's token selects it, and hands it to role_names_preload."""
    name = connections[using].ops.quote_name(Role._meta.get_field("name").column)
    if connections[using].vendor == "postgresql":
        return f"(SELECT COALESCE(json_agg(r.{name})::text, '[]') {_role_names_from(using, user_id)})"
    return f"(SELECT json_group_array(r.{name}) {_role_names_from(using, user_id)})"  # SQLite's JSON1, built in


def role_names_preload(user, names_json: str) -> None:
    """Keep the role names read by role_names_column on the user instance, for user_role_names."""
    user._idp_role_names = sorted(json.loads(names_json))


def user_role_names(user) -> list[str]:
    """The user's role names, sorted; read once per user instance (an access and an ID token share the read)."""
    prefetched = getattr(user, "_prefetched_objects_cache", {}).get("roles")
    if prefetched is not None:
        return sorted(role.name for role in prefetched)
    names = getattr(user, "_idp_role_names", None)
    if names is None:
        using = router.db_for_read(Role)
        with connections[using].cursor() as cursor:
            cursor.execute(_role_names_query(using), [user.pk])
            names = sorted(name for (name,) in cursor.fetchall())
        user._idp_role_names = names
    return list(names)


def client_role_names(client) -> list[str]:
    """Roles granted to a client for its own (client-credentials) tokens, sorted; the client cache (clients/cache.py)
    hands out clients with their roles already read."""
    return sorted(role.name for role in client.roles.all())


def access_token_claims(
    *,
    issuer: str,
    client,
    user,
    scopes: list[str],
    audience: str,
    issued_at: int,
    expires_in: int,
    auth_time: int | None,
) -> dict:
    """RFC 9068 §2.2 claims. No personal data (name, email) ever goes into an access token."""
    claims = {
        "iss": issuer,
        # RFC 9068 §2.2: `sub` is the resource owner, or the client itself when there is none (client credentials).
        "sub": str(user.subject) if user is not None else client.client_id,
        "aud": audience,
        "exp": issued_at + expires_in,
        "iat": issued_at,
        "nbf": issued_at,
        "jti": str(uuid.uuid4()),
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        # RFC 9068 §2.2.3.1 / RFC 7643: roles as a JSON array.
        "roles": user_role_names(user) if user is not None else client_role_names(client),
    }
    if user is not None and auth_time is not None:
        claims["auth_time"] = auth_time  # RFC 9068 §2.2.1
    return claims


def identity_claims(user, scopes: list[str]) -> dict:
    """OpenID Connect Core §5.4 standard claims released by scope, for ID tokens and userinfo (sub excluded)."""
    claims: dict = {}
    if SCOPE_PROFILE in scopes:
        claims.update(
            name=user.get_full_name() or user.get_username(),
            given_name=user.first_name,
            family_name=user.last_name,
            preferred_username=user.get_username(),
        )
    if SCOPE_EMAIL in scopes and user.email:
        # The IdP does not verify addresses yet, so it never claims they are verified.
        claims.update(email=user.email, email_verified=False)
    if SCOPE_ROLES in scopes:
        claims["roles"] = user_role_names(user)
    return claims
