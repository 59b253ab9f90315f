"""The OAuth2Validator that oauthlib consults: django-oauth-toolkit's, with the gaps it leaves closed."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import jwt
from django.conf import settings
from django.db import router, transaction
from django.utils import timezone
from oauth2_provider.models import AbstractApplication, get_access_token_model, get_id_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from idp.claims import identity_claims
from idp.constants import ID_TOKEN_TYP
from idp.keys import active_signing_key, signing_key_by_kid
from idp.models import GrantContext
from idp.revocation import revoke_token_family

AccessToken = get_access_token_model()
IDToken = get_id_token_model()


def _checksum(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class IdpOAuth2Validator(OAuth2Validator):
    # --- Client authentication -----------------------------------------------------------------
    def authenticate_client(self, request, *args, **kwargs) -> bool:
        # Only confidential clients authenticate with a secret. DOT lets a public client "authenticate" with its
        # client_id alone when grant_type is device_code; refusing public clients here closes that door.
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        return request.client.client_type == AbstractApplication.CLIENT_CONFIDENTIAL

    # --- Authorization codes ---------------------------------------------------------------------
    def save_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        super().save_authorization_code(client_id, code, request, *args, **kwargs)
        GrantContext.objects.create(
            code_checksum=_checksum(code["code"]),
            client=request.client,
            sid=getattr(request, "idp_sid", None) or "",
            auth_time=getattr(request, "idp_auth_time", None),
        )

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        # RFC 6749 §5.2: a redirect_uri that differs from the authorization request's makes the grant invalid;
        # oauthlib would answer invalid_request.
        if super().confirm_redirect_uri(client_id, code, redirect_uri, client, request, *args, **kwargs):
            return True
        raise errors.InvalidGrantError(
            description="The redirect_uri does not match the authorization request.", request=request
        )

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            context = GrantContext.objects.filter(code_checksum=_checksum(code), redeemed_at__isnull=True).first()
            if context is None:
                return False
            request.idp_grant_context = context
            request.idp_auth_time = context.auth_time
            request.idp_sid = context.sid
            return True
        # RFC 6749 §4.1.2: a code presented twice is a sign of theft; revoke what was issued from it.
        replayed = GrantContext.objects.filter(code_checksum=_checksum(code), redeemed_at__isnull=False).first()
        if replayed is not None:
            request.idp_code_replay = True
            revoke_token_family(token_family=replayed.token_family, access_token_id=replayed.access_token_id)
        return False

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        access_token = super()._create_access_token(expires, request, token, source_refresh_token)
        request.idp_access_token = access_token
        return access_token

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        refresh_token = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        request.idp_refresh_token = refresh_token
        return refresh_token

    def _save_bearer_token(self, token, request, *args, **kwargs):
        super()._save_bearer_token(token, request, *args, **kwargs)
        context = getattr(request, "idp_grant_context", None)
        if context is not None:
            refresh_token = getattr(request, "idp_refresh_token", None)
            access_token = getattr(request, "idp_access_token", None)
            GrantContext.objects.filter(pk=context.pk).update(
                redeemed_at=timezone.now(),
                token_family=refresh_token.token_family if refresh_token else None,
                access_token_id=access_token.pk if access_token else None,
            )

    def _check_and_set_request_resource(self, request) -> None:
        # The audience is chosen (and refused with invalid_target) by idp.tokens.resolve_audience and carried in
        # the JWT's `aud`. DOT's own RFC 8707 handling would also bind the stored row to URL prefixes and then
        # refuse the token at userinfo, so it is switched off here.
        request.resource = []

    # --- Refresh tokens --------------------------------------------------------------------------
    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        # DOT finds the row by checksum, refuses a rotated token and, with REFRESH_TOKEN_REUSE_PROTECTION,
        # revokes its whole family (RFC 9700 §4.14.2).
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        current = request.refresh_token_instance
        now = timezone.now()
        if current.created + timedelta(seconds=client.refresh_token_idle_lifetime) <= now:
            return False
        context = GrantContext.objects.filter(token_family=current.token_family).first()
        started = context.redeemed_at if context and context.redeemed_at else current.created
        if started + timedelta(seconds=client.refresh_token_lifetime) <= now:
            return False
        if current.user is not None and not current.user.is_active:
            return False
        if context is not None:
            request.idp_auth_time = context.auth_time
            request.idp_sid = context.sid
        return True

    # --- Bearer tokens at userinfo and other DOT-protected views ------------------------------------
    def validate_jwt_bearer_token(self, token, scopes, request) -> bool:
        # With OIDC on, oauthlib sends every JWT-shaped bearer token here and DOT would treat it as an ID token:
        # an id_token would pass as an access token and a real JWT access token would fail. Access tokens are
        # checked against their stored checksum instead, which an id_token never matches.
        return self.validate_bearer_token(token, scopes, request)

    def validate_bearer_token(self, token, scopes, request) -> bool:
        if not super().validate_bearer_token(token, scopes, request):
            return False
        user = request.user
        if user is not None and not user.is_active:
            request.oauth2_error = {"error": "invalid_token", "error_description": "The access token is invalid."}
            return False
        return True

    # --- OpenID Connect --------------------------------------------------------------------------
    def get_oidc_issuer_endpoint(self, request) -> str:
        return settings.IDP_ISSUER

    def get_oidc_claims(self, token, token_handler, request) -> dict:
        return {"sub": str(request.user.subject), **identity_claims(request.user, list(request.scopes or []))}

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        auth_time = getattr(request, "idp_auth_time", None)
        if auth_time is not None:
            claims["auth_time"] = auth_time
        sid = getattr(request, "idp_sid", None)
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
        with transaction.atomic(using=router.db_for_write(IDToken)):
            stored = self._save_id_token(id_token["jti"], request, expiration_time)
        request.access_token = stored
        request.id_token = stored
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
