"""Revoking tokens: a refresh-token family and the access tokens issued from it."""

from __future__ import annotations

import uuid

from django.db import transaction
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
