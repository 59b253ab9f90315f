"""Claims of access tokens (RFC 9068), ID tokens and userinfo (OpenID Connect Core), built in one place."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, prefetch_related_objects

from accounts.models import Role
from idp.constants import SCOPE_EMAIL, SCOPE_PROFILE, SCOPE_ROLES


def user_role_names(user) -> list[str]:
    """The user's role names, sorted; read once per user instance (an access and an ID token share the read)."""
    if "roles" not in getattr(user, "_prefetched_objects_cache", {}):
        prefetch_related_objects([user], Prefetch("roles", queryset=Role.objects.only("name")))
    return sorted(role.name for role in user.roles.all())


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
