"""The oauthlib bridge: DOT's OAuthLibCore, carrying the browser session's OIDC facts into the code grant."""

from oauth2_provider.oauth2_backends import OAuthLibCore

from accounts.sessions import SESSION_AUTH_TIME, SESSION_SID


class IdpOAuthLibCore(OAuthLibCore):
    def create_authorization_response(self, request, scopes, credentials, allow):
        # oauthlib copies credentials onto its request, so the validator can bind the code to the moment the
        # user authenticated (`auth_time`) and to the browser session (`sid`), for the ID token it later signs.
        credentials = {
            **credentials,
            "idp_auth_time": request.session.get(SESSION_AUTH_TIME),
            "idp_sid": request.session.get(SESSION_SID),
        }
        return super().create_authorization_response(request, scopes, credentials, allow)

    def create_token_response(self, request):
        uri, headers, body, status = super().create_token_response(request)
        # RFC 6749 §5.1-5.2: every token response, error or not, is JSON and must not be cached. oauthlib leaves
        # both off errors raised outside its own validation (e.g. invalid_target while minting).
        headers = {**headers, "Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}
        if status == 401:
            # RFC 6749 §5.2: the challenge names the scheme clients authenticate with, not oauthlib's Bearer.
            headers["WWW-Authenticate"] = 'Basic realm="idp", error="invalid_client"'
        return uri, headers, body, status
