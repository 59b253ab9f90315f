"""OAuth clients: django-oauth-toolkit's swappable Application, their secrets and the client CLI."""

from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "OAuth clients"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from clients.models import Client
        from clients.signals import client_cache_invalidate, client_roles_changed

        # Disabling a client, rotating its secret, editing its grants, redirect URIs or roles, deleting it, and
        # renaming or deleting a role all reach the token endpoint through the client cache (clients/cache.py).
        post_save.connect(client_cache_invalidate, sender=Client, dispatch_uid="clients.cache.client_saved")
        post_delete.connect(client_cache_invalidate, sender=Client, dispatch_uid="clients.cache.client_deleted")
        m2m_changed.connect(client_roles_changed, sender=Client.roles.through, dispatch_uid="clients.cache.roles")
        post_save.connect(client_cache_invalidate, sender="accounts.Role", dispatch_uid="clients.cache.role_saved")
        post_delete.connect(client_cache_invalidate, sender="accounts.Role",
                            dispatch_uid="clients.cache.role_deleted")
