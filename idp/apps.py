"""The token core: signing keys, JWT minting, OIDC claims, discovery and JWKS."""

from django.apps import AppConfig


class IdpConfig(AppConfig):
    name = "idp"
    verbose_name = "Identity provider"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from idp import checks  # noqa: F401  (registers the system checks)
