"""Refresh tokens at the token endpoint: DOT's checks on one read of the row, the IdP's lifetimes, and rotation."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model, refresh_token_expire_timedelta
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from audit import events
from idp import token_audit
from idp.oauth_request import carried
from idp.tokens import token_checksum
from idp.validator.statements import refresh_token_read
from idp.validator.writes import refresh_token_rotate

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


class RefreshTokenChecks:
    """The refresh-token half of IdpOAuth2Validator (idp/validator/oauth2.py), which it is mixed into."""

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """DOT's checks on one read of the row (its user and access token joined), then the IdP's lifetimes.

        A revoked token (rotated, or revoked at /o/revoke/) is refused and, with REFRESH_TOKEN_REUSE_PROTECTION,
        its whole family revoked (RFC 9700 §4.14.2), unless it is a retry within the grace period of a token that
        was rotated. A live token needs its access token, within REFRESH_TOKEN_EXPIRE_SECONDS of that token's
        expiry, and the client's idle and absolute lifetimes; its user must be active.
        """
        checksum = token_checksum(refresh_token)
        read = carried(request, "idp_presented_refresh_token", None)
        presented = read[1] if read is not None and read[0] == checksum else refresh_token_read(checksum)
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
        context = presented.family_context
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
        request.refresh_token_instance = presented  # read again by get_original_scopes and save_bearer_token
        return True

    @staticmethod
    def _refresh_token_preread(request) -> None:
        """For the refresh grant, read the presented token's row as oauthlib starts on the request, before the
        client is authenticated: the client cache generation comes with it, so authenticating the client from the
        cache (clients/cache.py) costs no statement of its own. Reading the row has no side effect, and it is used
        only by validate_refresh_token, which oauthlib calls once the client is authenticated."""
        token = request.refresh_token
        if request.grant_type != "refresh_token" or not isinstance(token, str):
            return
        checksum = token_checksum(token)
        presented = refresh_token_read(checksum)
        request.idp_presented_refresh_token = (checksum, presented)
        if presented is not None:
            request.idp_client_generation = presented.client_generation

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

    def _rotate_refresh_token(self, token, request, presented) -> None:
        """Replace the presented refresh token and its access token with the new pair and the new ID token, if any.

        DOT's rotation reads and locks the same rows three times over; this is one statement on PostgreSQL
        (idp/validator/writes.py). Of two requests presenting the token at once, the one that waited finds it
        revoked: it is refused with invalid_grant and the whole family is revoked, as for any reuse (RFC 9700
        §4.14.2). A retry within a grace period (the presented token already revoked) goes to DOT's rotation
        instead, which hands back the pair already issued.
        """
        id_token = self._issued_id_token(token, request)
        access_token = self._access_token_instance(self._token_expiry(token, request), request, token,
                                                   source_refresh_token=presented)
        refresh_token = self._refresh_token_instance(request, token["refresh_token"], access_token, presented)
        if not refresh_token_rotate(presented=presented, id_token=id_token, access_token=access_token,
                                    refresh_token=refresh_token):
            # Another request rotated it first. Which of the two is the thief cannot be told, so, as for any reuse
            # (RFC 9700 §4.14.2), the family is revoked; the token endpoint does it once this request's answer is
            # settled (idp/backend.py).
            request.idp_family_to_revoke = presented.token_family
            token_audit.refuse(request, token_audit.Refusal(
                type=events.TOKEN_REFRESH_REUSED, reason=token_audit.REASON_REFRESH_REUSED, user=presented.user,
                detail={"token_family": str(presented.token_family), "family_revoked": presented.token_family
                        is not None, "cause": "used_concurrently"},
            ))
            raise errors.InvalidGrantError(description="The refresh token was used by another request.",
                                           request=request)
        request.idp_access_token, request.idp_refresh_token = access_token, refresh_token
