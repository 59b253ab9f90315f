"""Users, roles, sign-in pages and the user and role CLI."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and roles"
    default_auto_field = "django.db.models.BigAutoField"
