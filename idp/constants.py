"""Protocol strings used by the token core, each with the specification that defines it."""

# RFC 9068 §2.1: the media type of a JWT access token, in its `typ` header.
ACCESS_TOKEN_TYP = "at+jwt"
ID_TOKEN_TYP = "JWT"

# OpenID Connect Core §5.4: scopes that ask for identity claims.
SCOPE_OPENID = "openid"
SCOPE_PROFILE = "profile"
SCOPE_EMAIL = "email"
SCOPE_ROLES = "roles"
IDENTITY_SCOPES = frozenset({SCOPE_OPENID, SCOPE_PROFILE, SCOPE_EMAIL, SCOPE_ROLES})

GRANT_TYPE_AUTHORIZATION_CODE = "authorization_code"
GRANT_TYPE_CLIENT_CREDENTIALS = "client_credentials"
GRANT_TYPE_REFRESH_TOKEN = "refresh_token"

# RFC 8707 §2: error for a resource the client may not ask for.
ERROR_INVALID_TARGET = "invalid_target"

# Algorithms any token of ours may carry; never `none` or HS* (RFC 8725 §3.1, RFC 9068 §4).
SIGNING_ALGORITHMS = ["RS256", "ES256"]

# RFC 8693 §2.1 / §3: token exchange grant and the only token type exchanged here.
GRANT_TYPE_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE_ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"

SUPPORTED_GRANT_TYPES = [
    GRANT_TYPE_AUTHORIZATION_CODE,
    GRANT_TYPE_CLIENT_CREDENTIALS,
    GRANT_TYPE_REFRESH_TOKEN,
    GRANT_TYPE_TOKEN_EXCHANGE,
]
