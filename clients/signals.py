"""Receivers that keep every process's client cache true (clients/cache.py): they only move the cache generation."""

from __future__ import annotations

from clients.models import ClientCacheGeneration


def client_cache_invalidate(sender, using: str | None = None, **kwargs) -> None:
    """After a client or a role was saved or deleted: a new generation, in the same transaction."""
    ClientCacheGeneration.bump(using=using)


def client_roles_changed(sender, action: str, using: str | None = None, **kwargs) -> None:
    """After roles were added to or removed from a client (from either side): a new generation."""
    if action in ("post_add", "post_remove", "post_clear"):
        ClientCacheGeneration.bump(using=using)
