"""The OAuth2Validator that oauthlib consults: django-oauth-toolkit's, with the gaps it leaves closed."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import jwt
from django.conf import settings
from django.db import router, transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.exceptions import FatalClientError
from oauth2_provider.models import (
    AbstractApplication,
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
    refresh_token_expire_timedelta,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors, utils

from audit import events
from clients.cache import client_cached_get
from clients.models import Client
from idp import bearer, token_audit
from idp.claims import identity_claims
from idp.constants import ID_TOKEN_TYP
from idp.keys import active_signing_key, signing_key_by_kid
from idp.models import GrantContext
from idp.revocation import revoke_rotated_refresh_token, revoke_token_family

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
IDToken = get_id_token_model()
Grant = get_grant_model()
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

    def _load_application(self, client_id, request):
        # The client comes from this process's client cache (clients/cache.py), which checks it against the cache
        # generation on every call: one lean query instead of the client and its roles. Client ID Metadata
        # Documents (DOT's CIMD, off here) are not consulted.
        client = request.client
        if not (isinstance(client, Client) and client.client_id == client_id and client.is_usable(request)):
            client = client_cached_get(client_id=client_id) if isinstance(client_id, str) else None
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
            code_checksum=_checksum(code["code"]),
            client=request.client,
            sid=getattr(request, "idp_sid", None) or "",
            auth_time=getattr(request, "idp_auth_time", None),
        )

    @staticmethod
    def _grant(code: str, request):
        """The code's Grant row (its user joined), read once per token request; None when there is none.

        oauthlib asks about the same code up to six times (scopes, nonce, validity, PKCE challenge and method, the
        redirect URI); DOT would read the row each time. Deleting it (invalidate_authorization_code) stays the one
        guard against redeeming a code twice.
        """
        read = getattr(request, "idp_grant", None)
        if read is None or read[0] != code:
            read = (code, Grant.objects.select_related("user").filter(code=code).first())
            request.idp_grant = read
        return read[1]

    def _client_grant(self, code: str, client, request):
        """The code's Grant row when it was issued to `client`, else None."""
        grant = self._grant(code, request)
        return grant if grant is not None and client is not None and grant.application_id == client.pk else None

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
            context = (
                GrantContext.objects.only("auth_time", "sid")
                .filter(code_checksum=_checksum(code), redeemed_at__isnull=True)
                .first()
            )
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
            .filter(code_checksum=_checksum(code), redeemed_at__isnull=False)
            .first()
        )
        if replayed is not None:
            revoke_token_family(token_family=replayed.token_family, access_token_id=replayed.access_token_id)
            family = str(replayed.token_family) if replayed.token_family else ""
            token_audit.refuse(request, token_audit.token_refusal("code_replay", token_family=family,
                                                                  family_revoked=True))
        return False

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        # DOT's, except that the ID token's row is the one finalize_id_token just stored, not selected back by jti.
        id_token = getattr(request, "idp_id_token", None) if token.get("id_token") else None
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=id_token,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),  # RFC 8707
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        request.idp_access_token = access_token
        return access_token

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        refresh_token = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        request.idp_refresh_token = refresh_token
        return refresh_token

    def _save_bearer_token(self, token, request, *args, **kwargs):
        presented = getattr(request, "refresh_token_instance", None)
        if (token.get("refresh_token") and isinstance(presented, RefreshToken) and presented.revoked is None
                and self.rotate_refresh_token(request)):
            self._rotate_refresh_token(token, request, presented)
        else:
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

    def _rotate_refresh_token(self, token, request, presented) -> None:
        """Replace the presented refresh token and its access token with the new pair, in the caller's transaction.

        DOT's rotation reads and locks the same rows three times over; this locks the presented token once. Of two
        requests presenting it at once, the one that waited finds it revoked: it is refused with invalid_grant and
        the whole family is revoked, as for any reuse (RFC 9700 §4.14.2). A retry within a grace period (the presented token
        already revoked) goes to DOT's rotation instead, which hands back the pair already issued.
        """
        if "scope" not in token:
            raise FatalClientError("Failed to renew access token: missing scope")
        self._check_and_set_request_resource(request)
        expires = timezone.now() + timedelta(
            seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS))
        if not revoke_rotated_refresh_token(refresh_token=presented):
            # Another request rotated it first. Which of the two is the thief cannot be told, so, as for any reuse
            # (RFC 9700 §4.14.2), the family is revoked; the token endpoint does it once this transaction has
            # rolled back (idp/backend.py).
            request.idp_family_to_revoke = presented.token_family
            token_audit.refuse(request, token_audit.Refusal(
                type=events.TOKEN_REFRESH_REUSED, reason=token_audit.REASON_REFRESH_REUSED, user=presented.user,
                detail={"token_family": str(presented.token_family), "family_revoked": presented.token_family
                        is not None, "cause": "used_concurrently"},
            ))
            raise errors.InvalidGrantError(description="The refresh token was used by another request.",
                                           request=request)
        access_token = self._create_access_token(expires, request, token, source_refresh_token=presented)
        self._create_refresh_token(request, token["refresh_token"], access_token, presented)

    def _check_and_set_request_resource(self, request) -> None:
        # The audience is chosen (and refused with invalid_target) by idp.tokens.resolve_audience and carried in
        # the JWT's `aud`. DOT's own RFC 8707 handling would also bind the stored row to URL prefixes and then
        # refuse the token at userinfo, so it is switched off here.
        request.resource = []

    # --- Refresh tokens --------------------------------------------------------------------------
    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """DOT's checks on one read of the row (its user and access token joined), then the IdP's lifetimes.

        A revoked token (rotated, or revoked at /o/revoke/) is refused and, with REFRESH_TOKEN_REUSE_PROTECTION,
        its whole family revoked (RFC 9700 §4.14.2), unless it is a retry within the grace period of a token that
        was rotated. A live token needs its access token, within REFRESH_TOKEN_EXPIRE_SECONDS of that token's
        expiry, and the client's idle and absolute lifetimes; its user must be active.
        """
        presented = (
            RefreshToken.objects.filter(token_checksum=_checksum(refresh_token))
            .select_related("access_token", "user")
            # Several rows may share a checksum (uniqueness is (token_checksum, revoked)): the live one first.
            .order_by(F("revoked").desc(nulls_first=True))
            .first()
        )
        if presented is None:
            return False
        now = timezone.now()
        # As in DOT, a reused token revokes its family whichever client presents it.
        if presented.revoked is not None:
            if self._refused_as_reused(presented, request, now):
                return False
        elif presented.access_token is None:
            return False  # its access token was deleted out of band: nothing is left to refresh against
        else:
            expire_delta = refresh_token_expire_timedelta()
            if expire_delta and presented.access_token.expires + expire_delta <= now:
                return False
        if presented.application_id != client.pk:
            return False
        presented.application = client  # the same row; spares DOT's code a second read of the client
        if presented.created + timedelta(seconds=client.refresh_token_idle_lifetime) <= now:
            token_audit.refuse(request, token_audit.token_refusal("invalid_grant", cause="idle_lifetime_over"))
            return False
        context = (
            GrantContext.objects.filter(token_family=presented.token_family)
            .values_list("redeemed_at", "auth_time", "sid")
            .first()
        ) if presented.token_family else None
        redeemed_at, auth_time, sid = context or (None, None, "")
        if (redeemed_at or presented.created) + timedelta(seconds=client.refresh_token_lifetime) <= now:
            token_audit.refuse(request, token_audit.token_refusal("invalid_grant", cause="lifetime_over"))
            return False
        if not presented.user.is_active:
            token_audit.refuse(request, token_audit.token_refusal("invalid_grant", cause="user_inactive"))
            return False
        if context is not None:
            request.idp_auth_time = auth_time
            request.idp_sid = sid
        request.user = presented.user
        # The raw token as presented: only its checksum is stored, and oauthlib reuses it when rotation is off.
        request.refresh_token = refresh_token
        request.refresh_token_instance = presented  # read again by get_original_scopes and _save_bearer_token
        return True

    def _refused_as_reused(self, presented, request, now) -> bool:
        """Whether a revoked refresh token is refused; when it is, its family is revoked and the reuse noted.

        DOT's rule: a revoked token is honoured again only within REFRESH_TOKEN_GRACE_PERIOD_SECONDS of its revocation
        and only if it was rotated (an access token was issued from it), never one revoked at /o/revoke/.
        """
        grace = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
        if presented.revoked > now - grace and AccessToken.objects.filter(source_refresh_token=presented).exists():
            return False
        if oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION and presented.token_family:
            RefreshToken.revoke_family(presented.token_family)
            token_audit.refuse(request, token_audit.Refusal(
                type=events.TOKEN_REFRESH_REUSED, reason=token_audit.REASON_REFRESH_REUSED, user=presented.user,
                detail={"token_family": str(presented.token_family), "family_revoked": True},
            ))
        return True

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
        request.idp_id_token = stored  # linked to the access token by _create_access_token
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
