"""Scopes: each client may request exactly the scopes registered for it."""

from oauth2_provider.scopes import BaseScopes
from oauth2_provider.settings import oauth2_settings

from idp.constants import GRANT_TYPE_CLIENT_CREDENTIALS, IDENTITY_SCOPES


class ScopeDescriptions(dict):
    """Known scopes have a plain-words description; an API scope (`orders:read`) describes itself."""

    def __missing__(self, scope: str) -> str:
        return scope


class ClientScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return ScopeDescriptions(oauth2_settings.SCOPES)

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return application.scope_list if application is not None else []

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        # RFC 6749 §3.3: with no `scope` parameter the client gets its registered scopes; a service token
        # (client credentials) has no user, so identity scopes make no sense there.
        if application is None:
            return []
        scopes = application.scope_list
        if getattr(request, "grant_type", None) == GRANT_TYPE_CLIENT_CREDENTIALS:
            scopes = [scope for scope in scopes if scope not in IDENTITY_SCOPES]
        return scopes
