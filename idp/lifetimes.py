"""Token lifetimes, read by oauthlib while it builds a token response (imported by settings: no model imports)."""

from django.conf import settings


def access_token_expires_in(request) -> int:
    """Seconds the access token being issued lives: the client's lifetime, never above the global cap."""
    client = getattr(request, "client", None)
    lifetime = getattr(client, "access_token_lifetime", None) or 300
    return min(lifetime, settings.IDP_ACCESS_TOKEN_MAX_LIFETIME)
