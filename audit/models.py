"""The append-only security event log, hash-chained so that a changed, inserted or deleted row is detectable."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from audit import events


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event through the ORM."""


class EventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are append-only: they are never updated.")

    def delete(self):
        raise AppendOnlyError("Audit events are append-only: remove old ones with `manage.py audit prune`.")

    def _raw_delete(self, using):
        raise AppendOnlyError("Audit events are append-only: remove old ones with `manage.py audit prune`.")


class Event(models.Model):
    """One security event. `seq`, `prev_hash` and `hash` chain each row to the one before (audit/chain.py)."""

    seq = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(db_index=True, editable=False)
    type = models.CharField(max_length=64, editable=False)
    outcome = models.CharField(max_length=16, choices=[(o, o) for o in events.OUTCOMES], editable=False)
    # A reference that outlives its user: no database constraint and nothing happens on delete, so deleting a
    # user never rewrites (and so never breaks the hash of) the events that name them; `username` keeps the name.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        editable=False,
    )
    username = models.CharField(max_length=150, blank=True, editable=False)
    client_id = models.CharField(max_length=100, blank=True, editable=False)
    ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    user_agent = models.CharField(max_length=256, blank=True, editable=False)
    reason = models.CharField(max_length=64, blank=True, editable=False)
    detail = models.JSONField(default=dict, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["type", "created_at"], name="audit_event_type_time"),
            models.Index(fields=["outcome", "created_at"], name="audit_event_outcome_time"),
            models.Index(fields=["username", "created_at"], name="audit_event_username_time"),
            models.Index(fields=["user", "created_at"], name="audit_event_user_time"),
            models.Index(fields=["client_id", "created_at"], name="audit_event_client_time"),
            models.Index(fields=["ip", "created_at"], name="audit_event_ip_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.outcome} #{self.seq}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only: they are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are append-only: remove old ones with `manage.py audit prune`.")


class ChainHead(models.Model):
    """The single row that serialises writers and remembers the chain's anchor and its last link."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
    # After `audit prune`, the first remaining event's seq and prev_hash become the anchor `audit verify` starts at.
    anchor_seq = models.BigIntegerField(default=1)
    anchor_hash = models.CharField(max_length=64)
    # HMAC of the four fields above (audit/chain.py head_mac): rewinding the head to hide the newest events, or
    # moving the anchor to hide the oldest, needs the chain key, not just write access to the database.
    mac = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit chain at #{self.last_seq}"
