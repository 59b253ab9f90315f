"""Who is calling, as the example services report it back: the verified claims that matter, never the token."""

from idp_resource_server import Claims


def caller(claims: Claims) -> dict:
    """The subject, the client it came through, the acting party for an exchanged token, its roles and scopes, and
    the token's `jti` (an identifier, not a secret), so a caller can tell one token from another."""
    return {
        "sub": claims.subject,
        "jti": claims["jti"],
        "client_id": claims.client_id,
        "act": claims.actor,
        "aud": claims["aud"],
        "roles": sorted(claims.roles),
        "scope": sorted(claims.scopes),
    }
