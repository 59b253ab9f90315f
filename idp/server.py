"""oauthlib's OpenID Connect server, offering only the grants and response types this IdP supports."""

from oauthlib.openid import Server

from idp.constants import GRANT_TYPE_TOKEN_EXCHANGE, SUPPORTED_GRANT_TYPES


class IdpServer(Server):
    """Code (with PKCE), client credentials, refresh and token exchange (RFC 8693) only.

    oauthlib's stock server also wires the password, implicit, hybrid and device grants. Leaving the password grant
    reachable lets anyone holding a public client_id test passwords at the token endpoint (it checks the password
    before it checks the client may use the grant), so the grants are removed rather than merely refused
    (RFC 9700 §2.1.2, §2.4).
    """

    def __init__(self, request_validator, *args, **kwargs):
        super().__init__(request_validator, *args, **kwargs)
        for name in list(self._grant_types):
            if name not in SUPPORTED_GRANT_TYPES:
                del self._grant_types[name]
        # Imported here: the server class is loaded by DOT's settings, before Django's models are ready.
        from idp.token_exchange import TokenExchangeGrant

        self._grant_types[GRANT_TYPE_TOKEN_EXCHANGE] = TokenExchangeGrant(request_validator)
        for response_type in list(self._response_types):
            if response_type != "code":
                del self._response_types[response_type]
