"""The OAuth2Validator that oauthlib consults: django-oauth-toolkit's, with the gaps it leaves closed."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import jwt
from django.conf import settings
from django.db import router, transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.models import (
    AbstractApplication,
    get_access_token_model,
    get_id_token_model,
    get_refresh_token_model,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from audit import events
from idp import bearer, token_audit
from idp.claims import identity_claims
from idp.constants import ID_TOKEN_TYP
from idp.keys import active_signing_key, signing_key_by_kid
from idp.models import GrantContext
from idp.revocation import revoke_token_family

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
IDToken = get_id_token_model()
# Marks that DOT looked the bearer token up and refused it (_set_oauth2_error_on_request); the row may be None.
_BEARER_ROW = "idp_bearer_row"


def _checksum(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _invalid_client(request, cause: str) -> token_audit.Refusal:
    client = request.client
    client_id = client.client_id if client is not None else token_audit.clean(getattr(request, "client_id", None))
    return token_audit.Refusal(type=events.TOKEN_FAILED, reason="invalid_client", client_id=client_id,
                               detail={"cause": cause})


class IdpOAuth2Validator(OAuth2Validator):
    """Closes the gaps DOT leaves, and notes on the oauthlib request why it refuses one (idp/token_audit.py)."""

    # --- Client authentication -----------------------------------------------------------------
    def client_authentication_required(self, request, *args, **kwargs) -> bool:
        # oauthlib asks this first for the code and refresh grants: the exchange learns its request here.
        token_audit.bind(request)
        return super().client_authentication_required(request, *args, **kwargs)

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
            code_checksum=_checksum(code["code"]),
            client=request.client,
            sid=getattr(request, "idp_sid", None) or "",
            auth_time=getattr(request, "idp_auth_time", None),
        )

    def get_code_challenge(self, code, request):
        # oauthlib checks the code_verifier (RFC 7636 §4.6) right after asking for the challenge and confirms the
        # redirect URI only once it matched, so a refusal in between is a PKCE failure (confirm_redirect_uri
        # withdraws this note).
        token_audit.refuse(request, token_audit.token_refusal("invalid_pkce"))
        return super().get_code_challenge(code, request)

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        if super().confirm_redirect_uri(client_id, code, redirect_uri, client, request, *args, **kwargs):
            token_audit.refuse(request, None)
            return True
        # RFC 6749 §5.2: a redirect_uri that differs from the authorization request's makes the grant invalid;
        # oauthlib would answer invalid_request.
        token_audit.refuse(request, token_audit.token_refusal("redirect_mismatch"))
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
            revoke_token_family(token_family=replayed.token_family, access_token_id=replayed.access_token_id)
            family = str(replayed.token_family) if replayed.token_family else ""
            token_audit.refuse(request, token_audit.token_refusal("code_replay", token_family=family,
                                                                  family_revoked=True))
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
            self._note_refresh_reuse(refresh_token, request)
            return False
        current = request.refresh_token_instance
        now = timezone.now()
        if current.created + timedelta(seconds=client.refresh_token_idle_lifetime) <= now:
            token_audit.refuse(request, token_audit.token_refusal("invalid_grant", cause="idle_lifetime_over"))
            return False
        context = GrantContext.objects.filter(token_family=current.token_family).first()
        started = context.redeemed_at if context and context.redeemed_at else current.created
        if started + timedelta(seconds=client.refresh_token_lifetime) <= now:
            token_audit.refuse(request, token_audit.token_refusal("invalid_grant", cause="lifetime_over"))
            return False
        if current.user is not None and not current.user.is_active:
            token_audit.refuse(request, token_audit.token_refusal("invalid_grant", cause="user_inactive"))
            return False
        if context is not None:
            request.idp_auth_time = context.auth_time
            request.idp_sid = context.sid
        return True

    def _note_refresh_reuse(self, refresh_token: str, request) -> None:
        """Note a refused refresh token that DOT treated as reused, having revoked its family; else nothing.

        DOT says only False. It revokes the family when the presented token was already revoked (rotated, or
        revoked at /o/revoke/) and is past the grace period or was never used to mint a successor; the same test
        here, on the failure path only, tells a reuse from an unknown, expired or other client's token.
        """
        if not oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION:
            return
        presented = (
            RefreshToken.objects.filter(token_checksum=_checksum(refresh_token))
            .select_related("user")
            .order_by(F("revoked").desc(nulls_first=True))
            .first()
        )
        if presented is None or presented.revoked is None or not presented.token_family:
            return
        grace = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
        if presented.revoked > timezone.now() - grace and AccessToken.objects.filter(
            source_refresh_token=presented
        ).exists():
            return
        token_audit.refuse(request, token_audit.Refusal(
            type=events.TOKEN_REFRESH_REUSED, reason=token_audit.REASON_REFRESH_REUSED, user=presented.user,
            detail={"token_family": str(presented.token_family), "family_revoked": True},
        ))

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
