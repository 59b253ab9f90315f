"""RFC 7662 token introspection, for confidential clients about tokens that concern them."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauthlib.common import Request as OauthlibRequest

from audit import events
from clients.cache import UNREAD, Unread, generation_column
from clients.models import Client
from idp import bearer, token_audit
from idp.token_endpoint import refuse_nul_bytes
from idp.tokens import token_checksum
from idp.validator.statements import refresh_token_read

AccessToken = get_access_token_model()
INACTIVE = {"active": False}


def _json(payload: dict, status: int = 200, **headers) -> HttpResponse:
    # json.dumps with its defaults reuses the module's encoder; JsonResponse builds a DjangoJSONEncoder for every
    # answer, for types (dates, decimals, UUIDs) that no introspection answer holds.
    response = HttpResponse(json.dumps(payload), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@functools.cache
def _oauthlib_core():
    # One per process, as DOT's views keep theirs (OAuthLibMixin.get_oauthlib_core): oauthlib's server and our
    # validator hold no per-request state, and building them costs more than authenticating the client.
    return get_oauthlib_core()


def authenticate_confidential_client(request: HttpRequest, *, generation: str | None | Unread = UNREAD,
                                     ) -> tuple[Client | None, token_audit.Refusal | None]:
    """The confidential client that authenticated this request (HTTP Basic or body), or None and why not.
    `generation`: the client cache generation, when the caller has read it in this request (clients/cache.py)."""
    core = _oauthlib_core()
    # oauthlib's request carries only what client authentication reads: the Authorization header, under the WSGI
    # name DOT looks it up by, and the body's parameters as DOT extracts them. Handing oauthlib every environ entry
    # and the body re-encoded, to be decoded again, cost a sixth of an introspection's CPU. The URI is the path
    # alone: a request with a query string is refused before this (introspect), and DOT's escaping of the full
    # path cost as much again as the client's secret check.
    authorization = request.META.get("HTTP_AUTHORIZATION")
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    oauthlib_request = OauthlibRequest(request.path, request.method, core.extract_body(request), headers)
    if generation is not UNREAD:
        oauthlib_request.idp_client_generation = generation  # read by the validator's _load_application
    try:
        authenticated = core.server.request_validator.authenticate_client(oauthlib_request)
    except (ValueError, UnicodeError):
        return None, None
    if not authenticated:
        return None, token_audit.refusal_of(oauthlib_request)
    return oauthlib_request.client, None


@dataclass(frozen=True)
class _AccessTokenRow:
    """What introspection needs of an access-token row: whether it is unexpired, its client and its user."""

    live: bool
    application_id: int | None
    owner: str | None
    enabled: bool | None
    username: str | None


@functools.cache
def _access_token_query() -> tuple[str, int]:
    """The client cache generation, then the expiry, client and username of the access-token row with a given
    checksum (NULLs when there is none): always one row. Built from the models' own table and column names. With
    the generation subquery's parameter, the statement's first.

    Plain SQL because a resource server may introspect on every request it serves, and the ORM's compiling of this
    join costs more than the rest of the lookup. Not statements.access_token_read, the bearer check's read of the
    same join: it fetches every column and builds three model instances, which measured 0.42 -> 0.52 ms of CPU per
    introspection. The generation rides along so that authenticating the caller from the client cache costs no
    statement of its own: one round trip instead of two, about a tenth of an introspection's CPU."""
    quote = connection.ops.quote_name
    token_meta, client_meta, user_meta = AccessToken._meta, Client._meta, get_user_model()._meta

    def column(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    token, client, user = quote(token_meta.db_table), quote(client_meta.db_table), quote(user_meta.db_table)
    generation, generation_parameter = generation_column(connection)
    return (
        f"SELECT {generation}, t.{column(token_meta, 'id')}, t.{column(token_meta, 'expires')} > %s, "  # noqa: S608
        f"t.{column(token_meta, 'application')}, c.{column(client_meta, 'client_id')}, "
        f"c.{column(client_meta, 'enabled')}, u.{column(user_meta, get_user_model().USERNAME_FIELD)} "
        f"FROM (SELECT 1) one LEFT JOIN {token} t ON t.{column(token_meta, 'token_checksum')} = %s "
        f"LEFT JOIN {client} c ON c.{column(client_meta, 'id')} = t.{column(token_meta, 'application')} "
        f"LEFT JOIN {user} u ON u.{column(user_meta, 'id')} = t.{column(token_meta, 'user')}"
    ), generation_parameter


def _access_token_read(token: str) -> tuple[str | None, _AccessTokenRow | None]:
    """The client cache generation (None when its row is missing) and the access-token row, read in one statement."""
    query, generation_parameter = _access_token_query()
    with connection.cursor() as cursor:
        cursor.execute(query, [generation_parameter, timezone.now(), token_checksum(token)])
        generation, token_id, *columns = cursor.fetchone()
    return generation, (_AccessTokenRow(*columns) if token_id is not None else None)


def _access_token_answer(client: Client, token: str, row: _AccessTokenRow | None | Unread = UNREAD,
                         ) -> tuple[dict, bearer.Rejection | None]:
    """The answer about an access token, and why it is inactive; (INACTIVE, None) when no row has this token.
    `row`: the token's row when the caller has read it already."""
    if row is UNREAD:
        _, row = _access_token_read(token)
    if row is None:
        return INACTIVE, None
    owner = row.owner or ""
    if not row.live:
        return INACTIVE, bearer.Rejection(reason=bearer.EXPIRED, client_id=owner)
    if row.application_id is not None and not row.enabled:
        return INACTIVE, bearer.Rejection(reason=bearer.REVOKED, client_id=owner, detail={"cause": "client_disabled"})
    # The row holds this token's SHA-256, so these are the very bytes we signed: read, not verified again.
    claims = bearer.stored_token_claims(token)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if row.application_id != client.pk and client.client_id not in audiences:
        # RFC 7662 §4: do not tell a client about tokens that are none of its business.
        return INACTIVE, bearer.Rejection(reason=bearer.WRONG_AUDIENCE, client_id=owner,
                                          detail={"jti": str(claims["jti"])[:64]})
    response = {
        "active": True,
        "token_type": "Bearer",
        **{name: claims[name] for name in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope",
                                              "roles", "auth_time") if name in claims},
    }
    if row.username is not None:
        response["username"] = row.username
    return response, None


def _refresh_token_answer(client: Client, token: str) -> tuple[dict, bearer.Rejection | None]:
    """The answer about a refresh token, and why it is inactive; (INACTIVE, None) when no row has this token."""
    # The token grant's own read: the live row first, then the most recently revoked, its user loaded.
    row = refresh_token_read(token_checksum(token))
    if row is None:
        return INACTIVE, None
    if row.application_id != client.pk:
        owner = Client.objects.filter(pk=row.application_id).values_list("client_id", flat=True).first()
        return INACTIVE, bearer.Rejection(reason=bearer.WRONG_AUDIENCE, client_id=owner or "")
    owner = client.client_id
    if row.revoked is not None or not client.enabled:
        return INACTIVE, bearer.Rejection(reason=bearer.REVOKED, client_id=owner)
    if row.created + timedelta(seconds=client.refresh_token_idle_lifetime) <= timezone.now():
        return INACTIVE, bearer.Rejection(reason=bearer.EXPIRED, client_id=owner)
    response = {"active": True, "token_type": "refresh_token", "client_id": client.client_id}
    if row.user is not None:
        response.update(sub=str(row.user.subject), username=row.user.get_username())
    return response, None


def _answer(client: Client, token: str, hint: str | None, access_row: _AccessTokenRow | None | Unread,
            ) -> tuple[dict, bearer.Rejection | None]:
    lookups = [functools.partial(_access_token_answer, row=access_row), _refresh_token_answer]
    if hint == "refresh_token":
        lookups.reverse()
    for lookup in lookups:
        answer, rejection = lookup(client, token)
        if answer["active"] or rejection is not None:
            return answer, rejection
    # No stored token of either kind: verify it (once) to say what is wrong with it.
    return INACTIVE, bearer.unknown_token_rejection(token)


@csrf_exempt
@require_POST
@refuse_nul_bytes
def introspect(request: HttpRequest) -> HttpResponse:
    if request.META.get("QUERY_STRING"):
        # As oauthlib answers at the token and revocation endpoints: every parameter travels in the body (RFC 7662
        # §2.1), and client credentials MUST NOT be in the URI (RFC 6749 §2.3.1), which access logs and proxies keep.
        token_audit.token_failure_record(request=request, error="invalid_request",
                                         endpoint=token_audit.ENDPOINT_INTROSPECTION)
        return _json({"error": "invalid_request", "error_description": "URL query parameters are not allowed"}, 400)
    token = request.POST.get("token", "")
    hint = request.POST.get("token_type_hint")
    generation, access_row = UNREAD, UNREAD
    if token and hint != "refresh_token":
        # Read before the caller is authenticated, together with the client cache generation that authentication
        # needs: a read by the token's digest, with no side effect, whose answer is only used once it is.
        generation, access_row = _access_token_read(token)
    client, refusal = authenticate_confidential_client(request, generation=generation)
    if client is None:
        # RFC 7662 §2.1 and RFC 6749 §5.2: the caller must authenticate as a confidential client.
        token_audit.token_failure_record(
            request=request, error="invalid_client", client_id=refusal.client_id if refusal else "",
            endpoint=token_audit.ENDPOINT_INTROSPECTION, detail=refusal.detail if refusal else None,
        )
        return _json({"error": "invalid_client", "error_description": "Client authentication failed."}, 401,
                     WWW_Authenticate='Basic realm="idp"')
    if not token:
        token_audit.token_failure_record(request=request, error="invalid_request", client_id=client.client_id,
                                         endpoint=token_audit.ENDPOINT_INTROSPECTION)
        return _json({"error": "invalid_request", "error_description": "The token parameter is missing."}, 400)
    answer, rejection = _answer(client, token, hint, access_row)
    if rejection is not None:
        # The event names the client that asked; the detail names the client the token was issued to.
        token_audit.bearer_rejection_record(
            request=request, endpoint=token_audit.ENDPOINT_INTROSPECTION,
            refusal=token_audit.Refusal(type=events.TOKEN_REJECTED, reason=rejection.reason,
                                        client_id=client.client_id,
                                        detail={**({"issued_to": rejection.client_id} if rejection.client_id else {}),
                                                **rejection.detail}),
        )
    return _json(answer)
