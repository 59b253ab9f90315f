"""The token core: signing keys, JWT minting, OIDC claims, discovery and JWKS."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class IdpConfig(AppConfig):
    default = True
    name = "idp"
    verbose_name = "Identity provider"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from idp import checks  # noqa: F401  (registers the system checks)


class IdpAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with the IdP's own site (idp/admin_site.py) as the default."""

    default = False
    default_site = "idp.admin_site.IdpAdminSite"
