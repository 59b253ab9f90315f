"""Writes for OAuth clients. A generated secret is returned once and only its hash is stored."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clients.models import (
    DEFAULT_ACCESS_TOKEN_LIFETIME,
    DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME,
    DEFAULT_REFRESH_TOKEN_LIFETIME,
    Client,
)

SECRET_BYTES = 32  # 256 bits of entropy


@dataclass(frozen=True)
class IssuedClient:
    """A client together with its plaintext secret, which exists only in this object and is shown once."""

    client: Client
    client_secret: str | None


def _reject_embedded_whitespace(**fields: list[str]) -> None:
    # These lists are stored space-separated, so one entry holding a space would smuggle in a second value.
    errors = {
        field: [f"{value!r} contains whitespace; give each value separately."]
        for field, values in fields.items()
        for value in values
        if not value or any(character.isspace() for character in value)
    }
    if errors:
        raise ValidationError(errors)


def _new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


@transaction.atomic
def client_create(
    *,
    name: str,
    client_type: str,
    grant_types: Iterable[str],
    redirect_uris: Iterable[str] = (),
    post_logout_redirect_uris: Iterable[str] = (),
    allowed_scopes: Iterable[str] = (),
    audiences: Iterable[str] = (),
    default_audience: str = "",
    skip_consent: bool = False,
    access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
    refresh_token_lifetime: int = DEFAULT_REFRESH_TOKEN_LIFETIME,
    refresh_token_idle_lifetime: int = DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME,
    allowed_origins: Iterable[str] = (),
) -> IssuedClient:
    """Validate and create a client; a confidential one gets a generated secret, returned here only.

    Raises ValidationError (nothing is written) when any value is rejected. Without an explicit default audience,
    the first allowed audience is the default.
    """
    redirect_uris, post_logout_redirect_uris = list(redirect_uris), list(post_logout_redirect_uris)
    allowed_scopes, allowed_origins = list(allowed_scopes), list(allowed_origins)
    _reject_embedded_whitespace(redirect_uris=redirect_uris, post_logout_redirect_uris=post_logout_redirect_uris,
                                allowed_scopes=allowed_scopes, allowed_origins=allowed_origins)
    audiences = list(dict.fromkeys(audiences))
    grant_types = list(dict.fromkeys(grant_types))
    secret = _new_secret() if client_type == Client.CLIENT_CONFIDENTIAL else ""
    client = Client(
        name=name,
        client_type=client_type,
        grant_types=grant_types,
        # DOT's single-grant field, kept for its own checks; `grant_types` is what is enforced.
        authorization_grant_type=grant_types[0] if grant_types else "",
        redirect_uris=" ".join(redirect_uris),
        post_logout_redirect_uris=" ".join(post_logout_redirect_uris),
        allowed_scopes=" ".join(dict.fromkeys(allowed_scopes)),
        audiences=audiences,
        default_audience=default_audience or (audiences[0] if audiences else ""),
        skip_authorization=skip_consent,
        access_token_lifetime=access_token_lifetime,
        refresh_token_lifetime=refresh_token_lifetime,
        refresh_token_idle_lifetime=refresh_token_idle_lifetime,
        allowed_origins=" ".join(allowed_origins),
        algorithm=Client.RS256_ALGORITHM,
        client_secret=secret,
        hash_client_secret=True,
    )
    client.full_clean(exclude=["client_secret", "user", "authorization_grant_type"])
    client.save()
    return IssuedClient(client=client, client_secret=secret or None)


@transaction.atomic
def client_rotate_secret(*, client: Client) -> IssuedClient:
    """Replace a confidential client's secret; the old one stops working at once. Returns the new secret once."""
    if client.client_type != Client.CLIENT_CONFIDENTIAL:
        raise ValidationError("Public clients have no secret to rotate.")
    secret = _new_secret()
    client.client_secret = secret
    client.secret_rotated_at = timezone.now()
    client.save(update_fields=["client_secret", "secret_rotated_at", "updated"])
    return IssuedClient(client=client, client_secret=secret)


def client_disable(*, client: Client) -> Client:
    """Disable a client: it can no longer obtain tokens, and its existing tokens stop being accepted."""
    client.enabled = False
    client.save(update_fields=["enabled", "updated"])
    return client
