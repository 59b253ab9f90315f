"""Reads for users and roles."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from accounts.models import User


def user_get_by_username(*, username: str) -> User:
    """The user with this username (any case); raises ValidationError when there is none."""
    try:
        return User.objects.get_by_natural_key(username)
    except User.DoesNotExist:
        raise ValidationError(f"No user named {username!r}.") from None


def user_with_roles(*, pk: int) -> User | None:
    """The active user with roles prefetched, or None."""
    return User.objects.prefetch_related("roles").filter(pk=pk, is_active=True).first()
