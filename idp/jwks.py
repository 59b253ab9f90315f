"""The JWK Set endpoint (RFC 7517 §5): the public keys that verify the IdP's tokens, served from memory."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.views.decorators.http import require_GET

from idp.keys import jwks_document


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """The published keys (next, active, retired) with public members only; no database query in steady state."""
    document = jwks_document()
    response = JsonResponse(document)
    if document["keys"]:
        # Resource servers may cache the set this long; rotation publishes a key at least this long before it signs.
        patch_cache_control(response, public=True, max_age=settings.IDP_JWKS_MAX_AGE)
    else:
        # Not bootstrapped yet: an empty set must not be cached, or verifiers would miss the first key.
        add_never_cache_headers(response)
    return response
