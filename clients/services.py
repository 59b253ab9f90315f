"""Writes for OAuth clients. A generated secret is returned once and only its hash is stored; every write is
recorded as an audit event (the secret never is). `request` is the admin's request, or None from the CLI."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import events
from audit.services import event_record
from clients.models import (
    DEFAULT_ACCESS_TOKEN_LIFETIME,
    DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME,
    DEFAULT_REFRESH_TOKEN_LIFETIME,
    Client,
    TokenExchangePolicy,
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
    request: HttpRequest | None = None,
) -> IssuedClient:
    """Validate and create a client; a confidential one gets a generated secret, returned here only.

    Raises ValidationError (nothing is written) when any value is rejected. Without an explicit default audience,
    the first allowed audience is the default. Records client.created.
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
    # Inside the transaction: a creation that rolls back leaves no event behind.
    event_record(
        type=events.CLIENT_CREATED, outcome=events.SUCCESS, request=request, client_id=client.client_id,
        detail={"name": client.name, "client_type": client.client_type, "grant_types": grant_types,
                "redirect_uris": redirect_uris, "allowed_scopes": client.scope_list, "audiences": audiences,
                "skip_consent": skip_consent},
    )
    return IssuedClient(client=client, client_secret=secret or None)


@transaction.atomic
def client_rotate_secret(*, client: Client, request: HttpRequest | None = None) -> IssuedClient:
    """Replace a confidential client's secret; the old one stops working at once. Returns the new secret once.

    Records client.secret_rotated (with when, never the secret).
    """
    if client.client_type != Client.CLIENT_CONFIDENTIAL:
        raise ValidationError("Public clients have no secret to rotate.")
    secret = _new_secret()
    client.client_secret = secret
    client.secret_rotated_at = timezone.now()
    client.save(update_fields=["client_secret", "secret_rotated_at", "updated"])
    event_record(type=events.CLIENT_SECRET_ROTATED, outcome=events.SUCCESS, request=request,
                 client_id=client.client_id, detail={"rotated_at": client.secret_rotated_at.isoformat()})
    return IssuedClient(client=client, client_secret=secret)


@transaction.atomic
def client_disable(*, client: Client, request: HttpRequest | None = None) -> Client:
    """Disable a client: it can no longer obtain tokens, and its existing tokens stop being accepted.

    Records client.disabled.
    """
    client.enabled = False
    client.save(update_fields=["enabled", "updated"])
    event_record(type=events.CLIENT_DISABLED, outcome=events.SUCCESS, request=request, client_id=client.client_id,
                 detail={"name": client.name})
    return client


@transaction.atomic
def exchange_policy_allow(
    *, client: Client, subject_audience: str, target_audience: str, request: HttpRequest | None = None
) -> TokenExchangePolicy:
    """Let `client` exchange tokens addressed to `subject_audience` for ones addressed to `target_audience`
    (RFC 8693). Idempotent; records client.exchange_allowed when the policy is new."""
    if client.client_type != Client.CLIENT_CONFIDENTIAL:
        raise ValidationError("Only confidential clients may exchange tokens (RFC 8693 §2.1).")
    subject_audience, target_audience = subject_audience.strip(), target_audience.strip()
    if not subject_audience or not target_audience:
        raise ValidationError("Give both the subject audience and the target audience.")
    if subject_audience == target_audience:
        raise ValidationError("Exchanging a token for the audience it already has would only extend its life.")
    policy, created = TokenExchangePolicy.objects.get_or_create(
        client=client, subject_audience=subject_audience, target_audience=target_audience
    )
    if created:
        event_record(type=events.CLIENT_EXCHANGE_ALLOWED, outcome=events.SUCCESS, request=request,
                     client_id=client.client_id,
                     detail={"subject_audience": subject_audience, "target_audience": target_audience})
    return policy


@transaction.atomic
def exchange_policy_revoke(
    *, client: Client, subject_audience: str, target_audience: str, request: HttpRequest | None = None
) -> bool:
    """Withdraw one exchange policy; returns whether there was one. Records client.exchange_revoked."""
    deleted, _ = TokenExchangePolicy.objects.filter(
        client=client, subject_audience=subject_audience, target_audience=target_audience
    ).delete()
    if deleted:
        event_record(type=events.CLIENT_EXCHANGE_REVOKED, outcome=events.SUCCESS, request=request,
                     client_id=client.client_id,
                     detail={"subject_audience": subject_audience, "target_audience": target_audience})
    return bool(deleted)
