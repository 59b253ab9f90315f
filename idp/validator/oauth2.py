"""The OAuth2Validator that oauthlib consults: django-oauth-toolkit's, with the gaps it leaves closed."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import jwt
from django.conf import settings
from django.utils import timezone
from oauth2_provider.exceptions import FatalClientError
from oauth2_provider.models import (
    AbstractApplication,
    get_access_token_model,
    get_id_token_model,
    get_refresh_token_model,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors, utils

from audit import events
from clients.cache import UNREAD, client_cached_get
from clients.models import Client
from idp import bearer, token_audit
from idp.claims import identity_claims
from idp.constants import ID_TOKEN_TYP
from idp.keys import active_signing_key, signing_key_by_kid
from idp.models import GrantContext
from idp.oauth_request import carried
from idp.revocation import revoke_token_family
from idp.tokens import token_checksum
from idp.validator.refresh import RefreshTokenChecks
from idp.validator.rows import row_insert
from idp.validator.statements import access_token_read, grant_read
from idp.validator.writes import authorization_code_redeem, grant_delete

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
IDToken = get_id_token_model()
# Marks that DOT looked the bearer token up and refused it (_set_oauth2_error_on_request); the row may be None.
_BEARER_ROW = "idp_bearer_row"


def _invalid_client(request, cause: str) -> token_audit.Refusal:
    client = request.client
    client_id = client.client_id if client is not None else token_audit.clean(getattr(request, "client_id", None))
    return token_audit.Refusal(type=events.TOKEN_FAILED, reason="invalid_client", client_id=client_id,
                               detail={"cause": cause})


def _code_replay_refusal(redeemed: GrantContext, **detail) -> token_audit.Refusal:
    """The refusal of a code presented again after `redeemed` was issued tokens, which are revoked for it."""
    family = str(redeemed.token_family) if redeemed.token_family else ""
    return token_audit.token_refusal("code_replay", token_family=family, family_revoked=True, **detail)


class IdpOAuth2Validator(RefreshTokenChecks, OAuth2Validator):
    """Closes the gaps DOT leaves, and notes on the oauthlib request why it refuses one (idp/token_audit.py)."""

    # --- Client authentication -----------------------------------------------------------------
    def client_authentication_required(self, request, *args, **kwargs) -> bool:
        # oauthlib asks this first for the code and refresh grants: the exchange learns its request here.
        token_audit.bind(request)
        self._refresh_token_preread(request)
        return super().client_authentication_required(request, *args, **kwargs)

    def _load_application(self, client_id, request):
        # The client comes from this process's client cache (clients/cache.py), which checks it against the cache
        # generation on every call: one lean query instead of the client and its roles, or none when the caller
        # read the generation in a statement of its own and left it on the request (idp/introspection.py). Client
        # ID Metadata Documents (DOT's CIMD, off here) are not consulted.
        client = request.client
        if not (isinstance(client, Client) and client.client_id == client_id and client.is_usable(request)):
            generation = carried(request, "idp_client_generation", UNREAD)
            client = None
            if isinstance(client_id, str):
                client = client_cached_get(client_id=client_id, generation=generation)
        if client is None or not client.is_usable(request):
            request.client = None
            return None
        request.client = client
        return client

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        token_audit.bind(request)
        if not super().authenticate_client(request, *args, **kwargs):
            # An unknown or disabled client, or a wrong secret: DOT does not say which, and neither does the event.
            token_audit.refuse(request, _invalid_client(request, "authentication_failed"))
            return False
        # Only confidential clients authenticate with a secret. DOT lets a public client "authenticate" with its
        # client_id alone when grant_type is device_code; refusing public clients here closes that door.
        if request.client.client_type != AbstractApplication.CLIENT_CONFIDENTIAL:
            token_audit.refuse(request, _invalid_client(request, "public_client"))
            return False
        return True

    def authenticate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        token_audit.bind(request)
        if super().authenticate_client_id(client_id, request, *args, **kwargs):
            return True
        cause = "confidential_client_without_secret" if request.client else "unknown_client"
        token_audit.refuse(request, _invalid_client(request, cause))
        return False

    # --- Authorization codes ---------------------------------------------------------------------
    def save_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        super().save_authorization_code(client_id, code, request, *args, **kwargs)
        GrantContext.objects.create(
            code_checksum=token_checksum(code["code"]),
            client=request.client,
            sid=carried(request, "idp_sid", None) or "",
            auth_time=carried(request, "idp_auth_time", None),
        )

    @staticmethod
    def _grant(code: str, request):
        """The code's Grant row (its user, its open context and the client cache generation read with it), read once
        per token request; None when there is none.

        oauthlib asks about the same code up to six times (scopes, nonce, validity, PKCE challenge and method, the
        redirect URI); DOT would read the row each time. The first time is before the client is authenticated, which
        then takes the client from the cache with the generation read here: no statement of its own. Deleting the
        row with the tokens (authorization_code_redeem) stays the one guard against redeeming a code twice.
        """
        read = carried(request, "idp_grant", None)
        if read is None or read[0] != code:
            read = (code, grant_read(code))
            request.idp_grant = read
            if read[1] is not None:
                request.idp_client_generation = read[1].client_generation
        return read[1]

    def _client_grant(self, code: str, client, request):
        """The code's Grant row when it was issued to `client`, else None."""
        grant = self._grant(code, request)
        return grant if grant is not None and client is not None and grant.application_id == client.pk else None

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        # oauthlib calls this once the tokens are saved; the code was deleted with them (_redeem_code). Otherwise,
        # DOT's, as one DELETE statement: whether a row went is what stops a code from being redeemed twice.
        if carried(request, "idp_code_redeemed", None) == code:
            return
        if not grant_delete(code=code, client_pk=request.client.pk):
            raise errors.InvalidGrantError(request=request)

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request) -> list[str]:
        grant = self._grant(code, request)
        return utils.scope_to_list(grant.scope) if grant is not None and grant.scope else []

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        grant = self._grant(code, request)
        return grant.nonce if grant is not None and grant.nonce else None

    def get_code_challenge(self, code, request):
        # oauthlib checks the code_verifier (RFC 7636 §4.6) right after asking for the challenge and confirms the
        # redirect URI only once it matched, so a refusal in between is a PKCE failure (confirm_redirect_uri
        # withdraws this note).
        token_audit.refuse(request, token_audit.token_refusal("invalid_pkce"))
        grant = self._client_grant(code, request.client, request)
        return (grant.code_challenge or None) if grant is not None else None

    def get_code_challenge_method(self, code, request):
        grant = self._client_grant(code, request.client, request)
        return (grant.code_challenge_method or None) if grant is not None else None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        grant = self._client_grant(code, client, request)
        if grant is not None and grant.redirect_uri_allowed(redirect_uri):
            token_audit.refuse(request, None)
            return True
        # RFC 6749 §5.2: a redirect_uri that differs from the authorization request's makes the grant invalid;
        # oauthlib would answer invalid_request.
        token_audit.refuse(request, token_audit.token_refusal("redirect_mismatch"))
        raise errors.InvalidGrantError(
            description="The redirect_uri does not match the authorization request.", request=request
        )

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        grant = self._client_grant(code, client, request)
        if grant is not None and not grant.is_expired():
            context = grant.open_context
            if context is None:
                return False
            # What DOT's validate_code carries from the grant onto the request.
            request.scopes = grant.scope.split(" ")
            request.user = grant.user
            if grant.nonce:
                request.nonce = grant.nonce
            if grant.claims:
                request.claims = json.loads(grant.claims)
            request.idp_grant_context = context
            request.idp_auth_time = context.auth_time
            request.idp_sid = context.sid
            return True
        # RFC 6749 §4.1.2: a code presented twice is a sign of theft; revoke what was issued from it.
        replayed = (
            GrantContext.objects.only("token_family", "access_token_id")
            .filter(code_checksum=token_checksum(code), redeemed_at__isnull=False)
            .first()
        )
        if replayed is not None:
            revoke_token_family(token_family=replayed.token_family, access_token_id=replayed.access_token_id)
            token_audit.refuse(request, _code_replay_refusal(replayed))
        return False

    @staticmethod
    def _issued_id_token(token, request):
        """The IDToken row of the ID token this response carries (finalize_id_token), saved or not; else None."""
        return carried(request, "idp_id_token", None) if token.get("id_token") else None

    def _access_token_instance(self, expires, request, token, source_refresh_token=None):
        # DOT's, except that the ID token's row is the one finalize_id_token made, not selected back by jti.
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=self._issued_id_token(token, request),
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),  # RFC 8707
        )
        self._set_token_value(access_token, token["access_token"])
        return access_token

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        # DOT's, written with one lean INSERT (idp/validator/rows.py).
        request.idp_access_token = row_insert(self._access_token_instance(expires, request, token,
                                                                          source_refresh_token))
        return request.idp_access_token

    def _refresh_token_instance(self, request, refresh_token_code, access_token, previous_refresh_token):
        refresh_token = RefreshToken(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=previous_refresh_token.token_family if previous_refresh_token else uuid.uuid4(),
            resource=getattr(request, "resource", []),  # RFC 8707
        )
        self._set_token_value(refresh_token, refresh_token_code)
        return refresh_token

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        # DOT's, written with one lean INSERT (idp/validator/rows.py).
        request.idp_refresh_token = row_insert(self._refresh_token_instance(request, refresh_token_code,
                                                                            access_token, previous_refresh_token))
        return request.idp_refresh_token

    def _refresh_token_to_rotate(self, token, request):
        """The live refresh token this response replaces (the refresh grant with rotation on), else None."""
        presented = getattr(request, "refresh_token_instance", None)
        if (token.get("refresh_token") and isinstance(presented, RefreshToken) and presented.revoked is None
                and self.rotate_refresh_token(request)):
            return presented
        return None

    def save_bearer_token(self, token, request, *args, **kwargs):
        # DOT saves every token response in a transaction. A rotation and a code's redemption are atomic by
        # themselves (one statement on PostgreSQL, idp/validator/writes.py), and so is a response with nothing but
        # an access token (client credentials, token exchange): one INSERT. The BEGIN and COMMIT would cost two
        # round trips on every such request.
        presented = self._refresh_token_to_rotate(token, request)
        if presented is not None:
            return self._rotate_refresh_token(token, request, presented)  # the ID token's row with the pair
        context = carried(request, "idp_grant_context", None)
        if context is not None:
            return self._redeem_code(token, request, context)
        if not token.get("refresh_token") and self._issued_id_token(token, request) is None:
            return self._save_bearer_token(token, request, *args, **kwargs)
        return super().save_bearer_token(token, request, *args, **kwargs)

    def _save_bearer_token(self, token, request, *args, **kwargs):
        # DOT's, in its transaction unless it is one INSERT; the ID token's row first, for the access token to link.
        id_token = self._issued_id_token(token, request)
        if id_token is not None and id_token.pk is None:
            row_insert(id_token)
        super()._save_bearer_token(token, request, *args, **kwargs)

    def _token_expiry(self, token, request):
        """When the access token of this response expires; DOT's checks of the response first."""
        if "scope" not in token:
            raise FatalClientError("Failed to renew access token: missing scope")
        self._check_and_set_request_resource(request)
        lifetime = token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        return timezone.now() + timedelta(seconds=lifetime)

    def _redeem_code(self, token, request, context: GrantContext) -> None:
        """Write the tokens issued for an authorization code, the code deleted and its context redeemed with them;
        refuse the exchange when another one redeemed the code first (idp/validator/writes.py)."""
        access_token = self._access_token_instance(self._token_expiry(token, request), request, token)
        refresh_token = None
        if token.get("refresh_token"):
            refresh_token = self._refresh_token_instance(request, token["refresh_token"], access_token, None)
        if not authorization_code_redeem(context=context, code=request.code, client_pk=request.client.pk,
                                         id_token=self._issued_id_token(token, request), access_token=access_token,
                                         refresh_token=refresh_token):
            self._concurrent_redemption_refuse(context, request)
        request.idp_access_token, request.idp_refresh_token = access_token, refresh_token
        request.idp_code_redeemed = request.code

    @staticmethod
    def _concurrent_redemption_refuse(context: GrantContext, request) -> None:
        """The code passed validation but could not be redeemed. Usually another exchange of it committed first: as
        for any code presented twice (RFC 6749 §4.1.2) this one is refused and what the other was issued is
        revoked, by the token endpoint once this request's writes are undone (idp/backend.py). The code may also
        have gone without being redeemed (pruned as it expired, or its client deleted): then nothing was issued
        from it and the exchange is refused as an invalid grant."""
        winner = GrantContext.objects.only("redeemed_at", "token_family", "access_token_id").filter(
            pk=context.pk).first()
        if winner is None or winner.redeemed_at is None:
            token_audit.refuse(request, token_audit.token_refusal("invalid_grant", cause="code_gone"))
            raise errors.InvalidGrantError(description="The authorization code is no longer valid.", request=request)
        request.idp_family_to_revoke = winner.token_family
        request.idp_access_token_to_revoke = winner.access_token_id
        token_audit.refuse(request, _code_replay_refusal(winner, cause="used_concurrently"))
        raise errors.InvalidGrantError(description="The authorization code was used by another request.",
                                       request=request)

    def _check_and_set_request_resource(self, request) -> None:
        # The audience is chosen (and refused with invalid_target) by idp.tokens.resolve_audience and carried in
        # the JWT's `aud`. DOT's own RFC 8707 handling would also bind the stored row to URL prefixes and then
        # refuse the token at userinfo, so it is switched off here.
        request.resource = []

    # --- Bearer tokens at userinfo and other DOT-protected views ------------------------------------
    def validate_jwt_bearer_token(self, token, scopes, request) -> bool:
        # With OIDC on, oauthlib sends every JWT-shaped bearer token here and DOT would treat it as an ID token:
        # an id_token would pass as an access token and a real JWT access token would fail. Access tokens are
        # checked against their stored checksum instead, which an id_token never matches.
        return self.validate_bearer_token(token, scopes, request)

    def validate_bearer_token(self, token, scopes, request) -> bool:
        token_audit.bind(request)
        if not super().validate_bearer_token(token, scopes, request):
            if token:
                token_audit.refuse(request, self._bearer_refusal(token, scopes, request))
            return False
        user = request.user
        if user is not None and not user.is_active:
            request.oauth2_error = {"error": "invalid_token", "error_description": "The access token is invalid."}
            token_audit.refuse(request, self._rejection(
                bearer.REVOKED, token, client=request.client, user=user, cause="user_inactive"))
            return False
        return True

    def _load_access_token(self, token):
        # DOT's read (the row, its client and user), as one statement the ORM need not compile.
        return access_token_read(token_checksum(token))

    def _set_oauth2_error_on_request(self, request, access_token, scopes):
        # DOT calls this when the row is missing, expired or short of scope; keep the row for _bearer_refusal.
        setattr(request, _BEARER_ROW, access_token)
        return super()._set_oauth2_error_on_request(request, access_token, scopes)

    def _bearer_refusal(self, token: str, scopes, request) -> token_audit.Refusal:
        """Why DOT refused this bearer token; a signature is checked only when no stored row names the token."""
        if not hasattr(request, _BEARER_ROW):
            # DOT found a live row but refused its client (Client.is_usable: disabled); the token is ours.
            return self._rejection(bearer.REVOKED, token, cause="client_disabled")
        row = getattr(request, _BEARER_ROW)
        if row is None:
            rejection = bearer.unknown_token_rejection(token)
            return token_audit.Refusal(type=events.TOKEN_REJECTED, reason=rejection.reason,
                                       client_id=rejection.client_id, detail=rejection.detail)
        if row.is_expired():
            return self._rejection(bearer.EXPIRED, token, client=row.application, user=row.user)
        # RFC 6750 §3.1: a live token without the scope asked for is not rejected; access is denied (403).
        return token_audit.Refusal(type=events.ACCESS_DENIED, reason=token_audit.REASON_INSUFFICIENT_SCOPE,
                                   client_id=row.application.client_id if row.application else "", user=row.user,
                                   detail={"required_scope": " ".join(scopes or [])})

    @staticmethod
    def _rejection(reason: str, token: str, *, client=None, user=None, cause: str = "") -> token_audit.Refusal:
        # The token matched a stored row, so it is ours and its payload can be read without verifying it again.
        claims = token_audit.unverified_claims(token)
        client_id = client.client_id if client is not None else str(claims.get("client_id", ""))[:100]
        detail = {"jti": str(claims.get("jti", ""))[:64], **({"cause": cause} if cause else {})}
        return token_audit.Refusal(type=events.TOKEN_REJECTED, reason=reason, client_id=client_id, user=user,
                                   detail=detail)

    # --- OpenID Connect --------------------------------------------------------------------------
    def validate_silent_login(self, request) -> bool:
        # OpenID Connect Core §3.1.2.1 prompt=none: oauthlib has no session here, so the views decide. DOT's
        # handle_no_permission answers login_required for an anonymous browser; accounts/views/authorize.py answers
        # consent_required when consent is missing.
        return True

    def validate_silent_authorization(self, request) -> bool:
        return True

    def get_oidc_issuer_endpoint(self, request) -> str:
        return settings.IDP_ISSUER

    def get_oidc_claims(self, token, token_handler, request) -> dict:
        return {"sub": str(request.user.subject), **identity_claims(request.user, list(request.scopes or []))}

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        auth_time = carried(request, "idp_auth_time", None)
        if auth_time is not None:
            claims["auth_time"] = auth_time
        sid = carried(request, "idp_sid", None)
        if sid:
            claims["sid"] = sid  # OpenID Connect Front-Channel/Back-Channel Logout §2
        return claims, expiration_time

    def finalize_id_token(self, id_token, token, token_handler, request) -> str:
        claims, expiration_time = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        key = active_signing_key()
        signed = jwt.encode(id_token, key.private_key, algorithm=key.algorithm,
                            headers={"kid": key.kid, "typ": ID_TOKEN_TYP})
        # DOT stores the row here, in a transaction of its own. It is written with the tokens instead
        # (_save_bearer_token): one round trip less, and no row for an ID token whose response failed.
        row = IDToken(user=request.user, scope=request.scope or " ".join(request.scopes), expires=expiration_time,
                      jti=id_token["jti"], application=request.client)
        request.access_token = row
        request.id_token = row
        request.idp_id_token = row  # linked to the access token by _access_token_instance
        return signed

    def _get_key_for_token(self, token):
        # DOT verifies its own ID tokens (id_token_hint at logout) with the active key only; any key still in
        # the JWKS is accepted here, chosen by `kid`, and only with that key's own algorithm.
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return None
        kid = header.get("kid")
        key = signing_key_by_kid(kid) if isinstance(kid, str) else None
        if key is None or header.get("alg") != key.algorithm:
            return None
        return key.jwk
