"""An admin mixin that records every add, change and delete made in the Django admin as an admin.change event."""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from django.http import HttpRequest

from audit import events
from audit.services import event_record

ADD = "add"
CHANGE = "change"
DELETE = "delete"


def admin_change_record(*, request: HttpRequest, obj: Model, action: str, message: Any = "") -> None:
    """Record one admin.change event for `obj`; `message` is the admin's change message (field names, no values)."""
    event_record(
        type=events.ADMIN_CHANGE,
        outcome=events.SUCCESS,
        request=request,
        reason=action,
        detail={
            "action": action,
            "model": obj._meta.label,
            "object_id": str(obj.pk),
            "object_repr": str(obj)[:200],
            "message": message or "",
        },
    )


class AuditedAdminMixin:
    """Put it before ModelAdmin in the bases. Django's own LogEntry is still written; the event is written beside it,
    in the same transaction as the change, so a change that rolls back leaves no event either.
    """

    def log_addition(self, request: HttpRequest, obj: Model, message: Any):
        entry = super().log_addition(request, obj, message)
        admin_change_record(request=request, obj=obj, action=ADD, message=message)
        return entry

    def log_change(self, request: HttpRequest, obj: Model, message: Any):
        entry = super().log_change(request, obj, message)
        admin_change_record(request=request, obj=obj, action=CHANGE, message=message)
        return entry

    def log_deletions(self, request: HttpRequest, queryset):
        # Called before the objects are deleted (one by one from the delete page, in bulk from the action), so
        # their ids and names can still be read. Django 5.1 replaced log_deletion with this method.
        objects = list(queryset)
        entries = super().log_deletions(request, objects)
        for obj in objects:
            admin_change_record(request=request, obj=obj, action=DELETE)
        return entries
