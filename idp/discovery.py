"""OpenID Connect Discovery 1.0 and RFC 8414 authorization-server metadata."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from oauth2_provider.settings import oauth2_settings

from idp.constants import SIGNING_ALGORITHMS, SUPPORTED_GRANT_TYPES

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def metadata(issuer: str) -> dict:
    """The provider metadata for this issuer; every URL is absolute and under the issuer."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/o/authorize/",
        "token_endpoint": f"{issuer}/o/token/",
        "userinfo_endpoint": f"{issuer}/o/userinfo/",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "end_session_endpoint": f"{issuer}/o/logout/",
        "introspection_endpoint": f"{issuer}/o/introspect/",
        "revocation_endpoint": f"{issuer}/o/revoke/",
        "scopes_supported": list(oauth2_settings.SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": SUPPORTED_GRANT_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": SIGNING_ALGORITHMS,
        "userinfo_signing_alg_values_supported": [],
        # Public clients authenticate with their client_id only and must use PKCE (RFC 7636).
        "token_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        "code_challenge_methods_supported": ["S256"],  # RFC 9700 §2.1.1: never plain
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
            "name", "given_name", "family_name", "preferred_username", "email", "email_verified", "roles",
        ],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": True,
    }


@require_GET
def openid_configuration(request: HttpRequest) -> JsonResponse:
    """Served from memory: no database access."""
    response = JsonResponse(metadata(settings.IDP_ISSUER))
    response["Cache-Control"] = f"public, max-age={settings.IDP_JWKS_MAX_AGE}"
    response["Access-Control-Allow-Origin"] = "*"  # public metadata, read by browser-based clients
    return response
