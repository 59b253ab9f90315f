"""Removing expired and revoked token rows, meant to run on a schedule (`manage.py tokens prune`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import (
    clear_expired,
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from accounts.throttling import login_throttles_prune
from idp.models import GrantContext

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
IDToken = get_id_token_model()
Grant = get_grant_model()
Client = get_application_model()

PRUNED_MODELS = {"access tokens": AccessToken, "refresh tokens": RefreshToken, "id tokens": IDToken,
                 "authorization codes": Grant, "grant contexts": GrantContext}


def _counts() -> dict[str, int]:
    return {name: model.objects.count() for name, model in PRUNED_MODELS.items()}


@transaction.atomic
def _prune_past_client_lifetimes(now: datetime) -> None:
    for client in Client.objects.only("pk", "refresh_token_lifetime", "refresh_token_idle_lifetime"):
        idle_cutoff = now - timedelta(seconds=client.refresh_token_idle_lifetime)
        absolute_cutoff = now - timedelta(seconds=client.refresh_token_lifetime)
        # Unused past the idle lifetime, or revoked (rotated) longer ago than a family can live: reuse of such a
        # token could no longer be told from any other unknown token, and it can never be honoured again.
        RefreshToken.objects.filter(application=client).filter(
            Q(revoked__isnull=True, created__lte=idle_cutoff) | Q(revoked__lte=absolute_cutoff)
        ).delete()
        families = GrantContext.objects.filter(client=client, created__lte=absolute_cutoff)
        family_ids = [f for f in families.values_list("token_family", flat=True) if f is not None]
        RefreshToken.objects.filter(token_family__in=family_ids).delete()
        families.delete()
    # Codes never redeemed are useless once DOT's grant row has expired.
    GrantContext.objects.filter(redeemed_at__isnull=True, created__lte=now - timedelta(days=1)).delete()
    Grant.objects.filter(expires__lt=now).delete()


def tokens_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete expired and revoked tokens, codes, grant contexts and stale sign-in failure counters; returns how
    many rows of each went."""
    now = now or timezone.now()
    before = _counts()
    _prune_past_client_lifetimes(now)
    clear_expired()  # DOT's own sweep: expired access/ID tokens, orphaned and long-revoked refresh tokens
    after = _counts()
    pruned = {name: before[name] - after[name] for name in before}
    pruned["sign-in failure counters"] = login_throttles_prune(now=now)
    return pruned
