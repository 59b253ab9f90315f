"""The toolkit under Django: settings from `settings.IDP_RESOURCE_SERVER`, one validator per process."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from idp_resource_server.settings import ResourceServerSettings
from idp_resource_server.validator import TokenValidator

SETTING_NAME = "IDP_RESOURCE_SERVER"

_lock = threading.Lock()
_cached: tuple[ResourceServerSettings, TokenValidator] | None = None


def _load() -> tuple[ResourceServerSettings, TokenValidator]:
    global _cached
    cached = _cached
    if cached is not None:
        return cached
    with _lock:
        if _cached is None:
            values = getattr(settings, SETTING_NAME, None)
            if not isinstance(values, dict):
                raise ImproperlyConfigured(
                    f"Set {SETTING_NAME} = {{'ISSUER': ..., 'AUDIENCE': ...}} to validate access tokens."
                )
            try:
                resource_server = ResourceServerSettings.from_dict(values)
            except (TypeError, ValueError) as error:
                raise ImproperlyConfigured(f"{SETTING_NAME}: {error}") from None
            _cached = (resource_server, resource_server.validator())
        return _cached


def resource_server_settings() -> ResourceServerSettings:
    """The parsed `IDP_RESOURCE_SERVER` setting; raises ImproperlyConfigured when it is missing or wrong."""
    return _load()[0]


def django_validator() -> TokenValidator:
    """The process's validator for `IDP_RESOURCE_SERVER`; its JWKS cache is shared by every request."""
    return _load()[1]


def reset(**kwargs) -> None:
    """Forget the validator (and its keys), so the next request builds one from the current setting."""
    global _cached
    if kwargs.get("setting", SETTING_NAME) == SETTING_NAME:
        with _lock:
            _cached = None


# Tests change the setting with override_settings; a stale validator would keep the old issuer and keys.
setting_changed.connect(reset, dispatch_uid="idp_resource_server.reset")
