"""Remembered consent: the scopes a user approved for a client, asked for again only when new ones appear.

Services write (`consent_grant`, `consent_deny`, `consent_revoke`) and record the audit event; selectors read
(`consent_covers`, `consents_for_user`, `scopes_described`). Clients are reached through django-oauth-toolkit's
swappable model, so this module needs nothing from the `clients` app.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)
from oauth2_provider.settings import oauth2_settings

from accounts.models import Consent, User
from audit import events
from audit.services import event_record


@dataclass(frozen=True)
class DescribedScope:
    """A scope as a person reads it: its plain-words description, with the technical name beside it."""

    name: str
    description: str
    is_new: bool = False


def scopes_described(scopes: Iterable[str], *, remembered: Iterable[str] = ()) -> list[DescribedScope]:
    """The scopes, in the given order and without repeats, each with a plain-words description.

    Identity scopes are described in settings.OAUTH2_PROVIDER["SCOPES"]; an API scope such as `orders:read` has
    no entry there and is shown as a permission the client would use on the person's behalf. `is_new` marks
    scopes outside `remembered` (what the person approved before).
    """
    descriptions = oauth2_settings.SCOPES
    remembered = set(remembered)
    return [
        DescribedScope(
            name=scope,
            description=descriptions.get(scope) or f"Use the “{scope}” permission on your behalf",
            is_new=scope not in remembered,
        )
        for scope in dict.fromkeys(scopes)
    ]


# --- Selectors ----------------------------------------------------------------------------------------------


def consent_remembered_scopes(*, user: User, client) -> list[str]:
    """The scopes the user approved for this client before (sorted), or an empty list."""
    return Consent.objects.filter(user=user, client=client).values_list("scopes", flat=True).first() or []


def consent_covers(*, user: User, client, scopes: Iterable[str]) -> bool:
    """True when the user approved every one of `scopes` for this client before (the remembered set is a superset)."""
    remembered = Consent.objects.filter(user=user, client=client).values_list("scopes", flat=True).first()
    # No row means nothing was ever approved, not even an empty request.
    return remembered is not None and set(scopes) <= set(remembered)


def consents_for_user(*, user: User) -> QuerySet[Consent]:
    """The user's remembered consents with their clients, by client name; `scopes_described(c.scopes)` reads them."""
    return Consent.objects.filter(user=user).select_related("client").order_by("client__name", "client_id")


# --- Services -----------------------------------------------------------------------------------------------


def consent_grant(*, user: User, client, scopes: Iterable[str], request: HttpRequest | None = None) -> Consent:
    """Remember that the user approved `scopes` for `client`, merged with what was approved before.

    Returns the consent, whose `scopes` is the sorted union; records consent.granted with the approved scopes.
    """
    approved = sorted(set(scopes))
    with transaction.atomic():
        consent, created = Consent.objects.select_for_update().get_or_create(
            user=user, client=client, defaults={"scopes": approved}
        )
        if not created:
            consent.scopes = sorted(set(consent.scopes) | set(approved))
            consent.save(update_fields=["scopes", "updated_at"])
    event_record(
        type=events.CONSENT_GRANTED,
        outcome=events.SUCCESS,
        request=request,
        user=user,
        client_id=client.client_id,
        detail={"scopes": approved, "remembered_scopes": consent.scopes},
    )
    return consent


def consent_deny(*, user: User, client, scopes: Iterable[str], request: HttpRequest | None = None) -> None:
    """Record that the user refused the client's request; nothing remembered changes."""
    event_record(
        type=events.CONSENT_DENIED,
        outcome=events.FAILURE,
        request=request,
        user=user,
        client_id=client.client_id,
        reason="user_denied",
        detail={"scopes": sorted(set(scopes))},
    )


def consent_revoke(*, user: User, client_pk: int, request: HttpRequest | None = None) -> bool:
    """Forget the user's consent to a client and revoke every token and unused code it holds for the user.

    Refresh tokens are marked revoked (so a later replay is recognised); access tokens, ID tokens and
    authorization codes are deleted. JWT access tokens already handed out stay verifiable at resource servers
    that only check signatures until they expire (minutes). Returns False, and records nothing, when there was
    neither a consent nor a token to revoke; otherwise records consent.revoked.
    """
    client = get_application_model().objects.filter(pk=client_pk).only("pk", "client_id").first()
    if client is None:
        return False
    access_tokens = get_access_token_model().objects.filter(user=user, application=client)
    refresh_tokens = get_refresh_token_model().objects.filter(user=user, application=client, revoked__isnull=True)
    with transaction.atomic():
        consent = Consent.objects.select_for_update().filter(user=user, client=client).first()
        revoked_refresh_tokens = 0
        for refresh_token in refresh_tokens:
            refresh_token.revoke()  # DOT's own revocation: marks it revoked and deletes its access token
            revoked_refresh_tokens += 1
        deleted_access_tokens, _ = access_tokens.delete()
        deleted_id_tokens, _ = get_id_token_model().objects.filter(user=user, application=client).delete()
        deleted_codes, _ = get_grant_model().objects.filter(user=user, application=client).delete()
        if consent is not None:
            consent.delete()
    if consent is None and not (revoked_refresh_tokens or deleted_access_tokens or deleted_id_tokens or deleted_codes):
        return False
    event_record(
        type=events.CONSENT_REVOKED,
        outcome=events.SUCCESS,
        request=request,
        user=user,
        client_id=client.client_id,
        detail={
            "scopes": consent.scopes if consent is not None else [],
            "revoked_refresh_count": revoked_refresh_tokens,
        },
    )
    return True
