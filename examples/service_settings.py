"""Settings shared by the example services: Django + DRF, no database, tokens checked by the toolkit.

Each service's settings module imports these and adds its own audience and URLs. Everything that varies comes from
the environment, read here.
"""

from __future__ import annotations

import os
import secrets

from django.core.exceptions import ImproperlyConfigured

IDP_ISSUER = os.environ.get("IDP_ISSUER", "http://127.0.0.1:8000").rstrip("/")
ORDERS_AUDIENCE = os.environ.get("ORDERS_AUDIENCE", "https://orders.example.com")
INVENTORY_AUDIENCE = os.environ.get("INVENTORY_AUDIENCE", "https://inventory.example.com")

# Nothing is signed with it (no sessions, no CSRF cookies): a fresh random key per process is enough, and none is
# ever committed.
SECRET_KEY = os.environ.get("SERVICE_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
USE_TZ = True

# Stateless services: no models, no database, no sessions, no auth app. The caller is whoever its token says.
DATABASES: dict = {}
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Every request but the health check needs a valid token; DRF's authentication reuses what it verified.
    "idp_resource_server.middleware.BearerTokenMiddleware",
]
APPEND_SLASH = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["idp_resource_server.drf.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "idp_resource_server.drf.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"idp_resource_server": {"handlers": ["console"], "level": "INFO"}},
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
X_FRAME_OPTIONS = "DENY"


def resource_server(audience: str, realm: str) -> dict:
    """The toolkit's setting for a service answering to `audience`."""
    return {"ISSUER": IDP_ISSUER, "AUDIENCE": audience, "REALM": realm, "REQUIRE_TOKEN": True,
            "EXEMPT_PATHS": ["/healthz"]}


def required_env(name: str) -> str:
    """An environment variable the service cannot run without; ImproperlyConfigured says which one is missing."""
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"Set {name} (the demo writes it to var/demo/demo.env).")
    return value
