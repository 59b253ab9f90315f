"""Reads for OAuth clients."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from clients.models import Client


def client_get(*, client_id: str) -> Client:
    """The client with this client_id; raises ValidationError when there is none."""
    try:
        return Client.objects.get(client_id=client_id)
    except (Client.DoesNotExist, ValueError):
        raise ValidationError(f"No client with client_id {client_id!r}.") from None


def client_list() -> QuerySet[Client]:
    """Every client, by name."""
    return Client.objects.order_by("name", "pk")
