"""Security events: the one way every app records what happened."""

import atexit

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.services import routine_writer

        # Routine events still queued at exit are written first: gunicorn's workers exit normally on SIGTERM,
        # SIGINT and SIGQUIT, as management commands do when they finish.
        atexit.register(routine_writer.stop)
