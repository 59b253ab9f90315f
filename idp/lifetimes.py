"""Token lifetimes, read by oauthlib while it builds a token response (imported by settings: no model imports)."""

import time

from django.conf import settings

from idp.oauth_request import carried


def client_access_token_lifetime(client) -> int:
    """Seconds an access token for this client lives: the client's lifetime, never above the global cap."""
    lifetime = getattr(client, "access_token_lifetime", None) or 300
    return min(lifetime, settings.IDP_ACCESS_TOKEN_MAX_LIFETIME)


def access_token_expires_in(request) -> int:
    """Seconds the access token being issued lives (oauthlib's `token_expires_in` hook)."""
    exchange = carried(request, "idp_exchange", None)
    if exchange is not None:
        # RFC 8693 exchanged tokens: short-lived, and never outliving the token they were exchanged for.
        remaining = exchange["subject_exp"] - int(time.time())
        return max(1, min(settings.IDP_TOKEN_EXCHANGE_LIFETIME, remaining))
    return client_access_token_lifetime(getattr(request, "client", None))
