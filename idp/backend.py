"""The oauthlib bridge: DOT's OAuthLibCore, carrying the browser session's OIDC facts into the code grant and
recording one audit event per token, revocation and userinfo response (idp/token_audit.py)."""

import json

from oauth2_provider.oauth2_backends import OAuthLibCore

from accounts.sessions import SESSION_AUTH_TIME, SESSION_SID
from audit import events
from idp import token_audit
from idp.oauth_request import carried
from idp.revocation import revoke_token_family


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
        with token_audit.exchange() as exchange:
            uri, headers, body, status = super().create_token_response(request)
        family = carried(exchange.oauthlib_request, "idp_family_to_revoke")
        access_token_id = carried(exchange.oauthlib_request, "idp_access_token_to_revoke")
        if family is not None or access_token_id is not None:
            # A refresh token rotated, or a code redeemed, concurrently by another request (idp/validator/): what
            # that one was issued is revoked here, after the refused request's own transaction rolled back, so
            # that the revocation stays.
            revoke_token_family(token_family=family, access_token_id=access_token_id)
        token_audit.token_response_record(request=request, exchange=exchange, body=body, status=status)
        # RFC 6749 §5.1-5.2: every token response, error or not, is JSON and must not be cached. oauthlib leaves
        # both off errors raised outside its own validation (e.g. invalid_target while minting).
        headers = {**headers, "Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}
        if status == 401:
            # RFC 6749 §5.2: the challenge names the scheme clients authenticate with, not oauthlib's Bearer.
            headers["WWW-Authenticate"] = 'Basic realm="idp", error="invalid_client"'
        return uri, headers, body, status

    def create_revocation_response(self, request):
        with token_audit.exchange() as exchange:
            uri, headers, body, status = super().create_revocation_response(request)
        token_audit.revocation_response_record(request=request, exchange=exchange, body=body, status=status)
        return uri, headers, body, status

    def create_userinfo_response(self, request):
        with token_audit.exchange() as exchange:
            uri, headers, body, status = super().create_userinfo_response(request)
        refusal = exchange.refusal
        if status != 401 or refusal is None:
            return uri, headers, body, status
        if refusal.type == events.ACCESS_DENIED:
            # RFC 6750 §3.1: a valid token without the scope the resource needs gets 403 insufficient_scope, not
            # oauthlib's 401 invalid_token; the access-denied middleware records the 403.
            body = json.dumps({"error": "insufficient_scope",
                               "error_description": "The access token does not carry the openid scope."})
            headers = {"Content-Type": "application/json", "Cache-Control": "no-store",
                       "WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"'}
            return uri, headers, body, 403
        token_audit.bearer_rejection_record(request=request, refusal=refusal, endpoint=token_audit.ENDPOINT_USERINFO)
        return uri, headers, body, status
