"""OAuth clients: django-oauth-toolkit's swappable Application, their secrets and the client CLI."""

from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "OAuth clients"
    default_auto_field = "django.db.models.BigAutoField"
