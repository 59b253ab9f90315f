"""Writes of the cookie token API: the first-party client, and token pairs issued, refreshed and revoked.

One token format: the pair is minted by oauthlib's BearerToken with the token core's generators and stored by our
OAuth2Validator, so the access token is the same RFC 9068 JWT (signed by the active key, published in the JWKS) and
the refresh token the same opaque, hashed, rotating value as at /o/token/. Refreshing runs the real refresh_token
grant, so rotation, the idle and absolute lifetimes and reuse detection (RFC 9700 §4.14.2) apply unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauthlib.common import Request as OauthlibRequest

from accounts.models import User
from audit import events
from audit.services import event_record
from clients.cache import client_cached_get
from clients.models import GRANT_AUTHORIZATION_CODE, Client
from idp.api_auth import access_token_claims_verify
from idp.constants import GRANT_TYPE_REFRESH_TOKEN, SCOPE_EMAIL, SCOPE_OPENID, SCOPE_PROFILE, SCOPE_ROLES
from idp.models import GrantContext
from idp.oauth_request import carried
from idp.revocation import revoke_token_family
from idp.tokens import token_checksum

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()

# The grant label on the oauthlib request that mints a pair at sign-in. It is no OAuth grant type: no client can
# ask for it at /o/token/ (idp.constants.SUPPORTED_GRANT_TYPES); the token core treats it like any user grant.
GRANT_TYPE_FIRST_PARTY_LOGIN = "first_party_login"
FIRST_PARTY_SCOPES = (SCOPE_OPENID, SCOPE_PROFILE, SCOPE_EMAIL, SCOPE_ROLES)
# Headers of the browser's request that must not reach the synthesized token request: the cookies (the refresh
# token travels as a parameter instead) and any Authorization header (which would make oauthlib demand a secret).
_NOT_FORWARDED = frozenset({"HTTP_COOKIE", "HTTP_AUTHORIZATION", "CONTENT_LENGTH", "wsgi.input"})


class FirstPartyClientDisabled(Exception):
    """An administrator disabled the first-party client: the cookie API issues nothing."""


class TokenRefreshRefused(Exception):
    """The refresh token was not accepted; `error` is the RFC 6749 §5.2 code the token core answered with."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class IssuedTokens:
    """A fresh access and refresh token with their lifetimes, in seconds from now; the values never reach a log."""

    user: User
    scope: str
    access_token: str = field(repr=False)
    access_token_expires_in: int
    refresh_token: str = field(repr=False)
    refresh_token_expires_in: int


# --- The first-party client. ----------------------------------------------------------------------------------


def first_party_client_ensure() -> tuple[Client, bool]:
    """The first-party client (IDP_FIRST_PARTY_CLIENT_ID), created when missing; returns (client, created).

    Safe under concurrency: when two processes create it at once, the unique client_id lets one insert win and the
    other reads that row. An administrator's later changes (or disabling it) are kept, never overwritten.
    """
    client_id = settings.IDP_FIRST_PARTY_CLIENT_ID
    # From the client cache, as the token endpoint reads clients: every sign-in and cookie refresh asks for it.
    client = client_cached_get(client_id=client_id)
    if client is not None:
        return client, False
    # Public (a browser holds no secret) and first-party (no consent screen). Its refresh family lives as long as a
    # browser session: the session's absolute lifetime and idle timeout.
    absolute = settings.SESSION_COOKIE_AGE
    client = Client(
        client_id=client_id,
        name="IdP web (first-party cookie API)",
        client_type=Client.CLIENT_PUBLIC,
        # DOT lets a client use the refresh_token grant only alongside a grant that issues refresh tokens.
        grant_types=[GRANT_AUTHORIZATION_CODE],
        authorization_grant_type=GRANT_AUTHORIZATION_CODE,
        # No redirect URI on purpose: the authorization endpoint refuses this client, whose tokens come only from
        # the cookie API's sign-in. (Client.clean asks for one with authorization-code, so it is not called.)
        redirect_uris="",
        allowed_scopes=" ".join(FIRST_PARTY_SCOPES),
        audiences=[settings.IDP_API_AUDIENCE],
        default_audience=settings.IDP_API_AUDIENCE,
        skip_authorization=True,
        refresh_token_lifetime=absolute,
        refresh_token_idle_lifetime=min(settings.IDP_SESSION_IDLE_TIMEOUT, absolute),
        algorithm=Client.RS256_ALGORITHM,
        client_secret="",
        hash_client_secret=True,
    )
    client.clean_fields(exclude=["client_secret", "user"])
    try:
        with transaction.atomic():
            client.save()
    except IntegrityError:
        return Client.objects.get(client_id=client_id), False
    event_record(
        type=events.CLIENT_CREATED, outcome=events.SUCCESS, client_id=client_id,
        detail={"first_party": True, "client_type": client.client_type},
    )
    return client, True


def _usable_first_party_client() -> Client:
    client, _ = first_party_client_ensure()
    if not client.enabled:
        raise FirstPartyClientDisabled()
    return client


# --- Lifetimes. -------------------------------------------------------------------------------------------------


def _refresh_token_expires_in(*, client: Client, created: datetime, family_started: datetime) -> int:
    """Seconds until a refresh token stops working: the sooner of its idle and its family's absolute deadline.

    The same limits the validator enforces (idp.validator.IdpOAuth2Validator.validate_refresh_token), so the
    browser drops the cookie when the token could no longer be used anyway.
    """
    idle_end = created + timedelta(seconds=client.refresh_token_idle_lifetime)
    absolute_end = family_started + timedelta(seconds=client.refresh_token_lifetime)
    return max(0, int((min(idle_end, absolute_end) - timezone.now()).total_seconds()))


# --- Sign-in. ---------------------------------------------------------------------------------------------------


def token_pair_issue(*, request: HttpRequest, user: User) -> IssuedTokens:
    """Mint an access and refresh token for a user who has just authenticated, as the first-party client.

    Raises FirstPartyClientDisabled when the client is disabled, and idp.keys.NoActiveSigningKey when nothing can
    sign. Writes the AccessToken and RefreshToken rows (checksums only) of a new family and its GrantContext, which
    carries `auth_time` into every refreshed token and anchors the family's absolute lifetime.
    """
    client = _usable_first_party_client()
    core = get_oauthlib_core()
    auth_time = int(time.time())
    oauth_request = OauthlibRequest(f"{settings.IDP_ISSUER}{request.path}", http_method="POST")
    oauth_request.user = user
    oauth_request.client = client
    oauth_request.client_id = client.client_id
    oauth_request.scopes = client.scope_list
    oauth_request.grant_type = GRANT_TYPE_FIRST_PARTY_LOGIN
    oauth_request.idp_auth_time = auth_time  # RFC 9068 §2.2.1 `auth_time`, read by idp.tokens
    with transaction.atomic():
        # A sign-in has no authorization code; the context is keyed by the checksum of a random value nobody holds,
        # so no code can ever match it. The validator records the family and access token on it when saving.
        oauth_request.idp_grant_context = GrantContext.objects.create(
            code_checksum=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
            client=client,
            sid="",
            auth_time=auth_time,
        )
        token = core.server.default_token_type.create_token(oauth_request, refresh_token=True)
        core.server.request_validator.save_bearer_token(token, oauth_request)
    # The same detail idp.token_audit records for tokens issued at /o/token/.
    family = getattr(carried(oauth_request, "idp_refresh_token", None), "token_family", None)
    event_record(
        type=events.TOKEN_ISSUED, outcome=events.SUCCESS, request=request, user=user, client_id=client.client_id,
        detail={"grant_type": GRANT_TYPE_FIRST_PARTY_LOGIN, "jti": carried(oauth_request, "idp_jti", ""),
                "scope": token["scope"], "audience": client.default_audience or client.client_id,
                "token_family": str(family) if family else ""},
    )
    now = timezone.now()
    return IssuedTokens(
        user=user,
        scope=token["scope"],
        access_token=token["access_token"],
        access_token_expires_in=int(token["expires_in"]),
        refresh_token=token["refresh_token"],
        refresh_token_expires_in=_refresh_token_expires_in(client=client, created=now, family_started=now),
    )


# --- Refresh. ---------------------------------------------------------------------------------------------------


def _token_endpoint_request(request: HttpRequest, params: dict[str, str]) -> HttpRequest:
    """The browser's request re-addressed to the token core as a form-encoded token request carrying `params`.

    It keeps the client's address and user agent (for the audit trail) and drops cookies and credentials.
    """
    forwarded = copy.copy(request)
    forwarded.META = {name: value for name, value in request.META.items() if name not in _NOT_FORWARDED}
    forwarded.META.update(CONTENT_TYPE="application/x-www-form-urlencoded", QUERY_STRING="")
    forwarded._post = QueryDict(urlencode(params))
    forwarded._files = MultiValueDict()
    return forwarded


def token_pair_refresh(*, request: HttpRequest, refresh_token: str) -> IssuedTokens:
    """Rotate a first-party refresh token through the real refresh_token grant; returns the new pair.

    Raises TokenRefreshRefused with the token core's error code when the token is unknown, expired, revoked or
    belongs to another client, or FirstPartyClientDisabled. A refresh token that was already rotated is reuse:
    django-oauth-toolkit has then revoked its whole family (REFRESH_TOKEN_REUSE_PROTECTION) before this raises.
    """
    client = _usable_first_party_client()
    forwarded = _token_endpoint_request(request, {
        "grant_type": GRANT_TYPE_REFRESH_TOKEN, "refresh_token": refresh_token, "client_id": client.client_id,
    })
    _, _, body, status = get_oauthlib_core().create_token_response(forwarded)
    try:
        answer = json.loads(body)
    except (TypeError, ValueError):
        answer = {}
    if status != 200 or not answer.get("refresh_token") or not answer.get("access_token"):
        raise TokenRefreshRefused(str(answer.get("error") or "invalid_grant"))
    rotated = (
        RefreshToken.objects.select_related("user")
        .filter(token_checksum=token_checksum(answer["refresh_token"]), revoked__isnull=True)
        .first()
    )
    if rotated is None:  # revoked by a concurrent request between rotation and this read
        raise TokenRefreshRefused("invalid_grant")
    context = GrantContext.objects.filter(token_family=rotated.token_family).first()
    started = context.redeemed_at if context is not None and context.redeemed_at else rotated.created
    return IssuedTokens(
        user=rotated.user,
        scope=str(answer.get("scope", "")),
        access_token=answer["access_token"],
        access_token_expires_in=int(answer.get("expires_in", 0)),
        refresh_token=answer["refresh_token"],
        refresh_token_expires_in=_refresh_token_expires_in(client=client, created=rotated.created,
                                                           family_started=started),
    )


# --- Sign-out. --------------------------------------------------------------------------------------------------


def token_family_revoke_by_access_token(*, request: HttpRequest, token: str) -> uuid.UUID | None:
    """Revoke the refresh-token family (and its access tokens) that an access token of ours was issued from.

    The token must carry our signature, issuer, audience and type; it may have expired, since it only names what to
    revoke. Records a logout event and returns the revoked family, or None when nothing was left to revoke. Raises
    idp.api_auth.AccessTokenRejected for a token that is not ours.
    """
    access_token_claims_verify(token=token, audience=settings.IDP_API_AUDIENCE, verify_expiry=False)
    row = (
        AccessToken.objects.select_related("user", "application")
        .filter(token_checksum=token_checksum(token))
        .first()
    )
    if row is None:
        return None
    family = RefreshToken.objects.filter(access_token_id=row.pk).values_list("token_family", flat=True).first()
    revoke_token_family(token_family=family, access_token_id=row.pk)
    event_record(
        type=events.LOGOUT, outcome=events.SUCCESS, request=request, user=row.user,
        client_id=row.application.client_id if row.application is not None else "",
        detail={"via": "cookie_api", "token_family": str(family) if family else None},
    )
    return family
