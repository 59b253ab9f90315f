"""Resource-server toolkit: validate the IdP's RFC 9068 JWT access tokens locally, and call other services.

It imports nothing from the IdP: a microservice installs it (`pip install ./toolkit`) and points it at the issuer.
"""

from idp_resource_server.bearer import bearer_token, configure, require, validate_bearer, www_authenticate
from idp_resource_server.client import TokenClient, TokenRequestError
from idp_resource_server.errors import InsufficientScope, InvalidToken, KeysUnavailable, TokenError, TokenMissing
from idp_resource_server.jwks import JwksCache
from idp_resource_server.settings import ResourceServerSettings
from idp_resource_server.validator import Claims, TokenValidator

__all__ = [
    "Claims",
    "InsufficientScope",
    "InvalidToken",
    "JwksCache",
    "KeysUnavailable",
    "ResourceServerSettings",
    "TokenClient",
    "TokenError",
    "TokenMissing",
    "TokenRequestError",
    "TokenValidator",
    "bearer_token",
    "configure",
    "require",
    "validate_bearer",
    "www_authenticate",
]
