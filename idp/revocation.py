"""Revoking tokens: a refresh-token family and the access tokens issued from it, or one rotated refresh token."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


@transaction.atomic
def revoke_token_family(*, token_family: uuid.UUID | None, access_token_id: int | None = None) -> None:
    """Revoke every refresh token of the family and delete the access-token rows issued from it.

    JWT access tokens already handed out stay verifiable at resource servers that only check signatures until
    they expire; that is why their lifetime is short. Introspection and userinfo refuse them at once.
    """
    RefreshToken.revoke_family(token_family)  # also deletes the family's access-token rows; no-op for None
    if access_token_id is not None:
        AccessToken.objects.filter(pk=access_token_id).delete()


@transaction.atomic(savepoint=False)  # the caller's transaction holds the lock until the new pair is committed
def revoke_rotated_refresh_token(*, refresh_token) -> bool:
    """Revoke a live refresh token that a refresh is replacing and delete its access token's row; False (nothing
    written) when it is no longer live.

    The row is locked first, so of two requests rotating the same token at once exactly one gets True: the other
    waits for the first to commit and then finds the token revoked. Locks are taken refresh token first, then access
    token, the order RefreshToken.revoke_family uses, so a concurrent family revocation cannot deadlock with this.
    """
    live = RefreshToken.objects.select_for_update().filter(pk=refresh_token.pk, revoked__isnull=True)
    access_token_ids = list(live.values_list("access_token_id", flat=True))
    if not access_token_ids:
        return False
    now = timezone.now()
    # `updated` is auto_now, which a queryset update does not set (as in RefreshToken.revoke_family).
    RefreshToken.objects.filter(pk=refresh_token.pk).update(revoked=now, updated=now, access_token=None)
    if access_token_ids[0] is not None:
        AccessToken.objects.filter(pk=access_token_ids[0]).delete()
    refresh_token.revoked, refresh_token.updated, refresh_token.access_token = now, now, None
    return True
