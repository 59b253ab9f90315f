"""Records every 403 answer of the IdP as one access.denied event, unless its refusal was already recorded.

Code that records a more precise event for a refusal marks the request or the response with `audit_recorded = True`
(idp.token_audit.mark_recorded does it for the request), and this middleware then records nothing more.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse

from audit import events
from audit.services import event_record
from idp.token_audit import RECORDED_ATTRIBUTE, clean

_VIEW_REACHED = "_access_audit_view_reached"
# Set on the request by code that knows why it answers 403, e.g. "insufficient_scope".
DENIED_REASON_ATTRIBUTE = "access_denied_reason"
REASON_CSRF = "csrf"
REASON_FORBIDDEN = "forbidden"
_MAX_ERROR_BODY = 4096


def _error_code(response: HttpResponse) -> str:
    # RFC 6750 §3.1 and RFC 6749 §5.2 errors are JSON objects with an `error` member.
    if response.streaming or not response.get("Content-Type", "").startswith("application/json"):
        return ""
    if len(response.content) > _MAX_ERROR_BODY:
        return ""
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return clean(error, 64) if isinstance(error, str) else ""


def _reason(request: HttpRequest, response: HttpResponse) -> str:
    if not getattr(request, _VIEW_REACHED, False):
        # CsrfViewMiddleware refuses in its process_view, which runs before this one's: the view was never reached.
        return REASON_CSRF
    return clean(getattr(request, DENIED_REASON_ATTRIBUTE, ""), 64) or _error_code(response) or REASON_FORBIDDEN


class AccessDeniedAuditMiddleware:
    """Sits after AuthenticationMiddleware (so the event names the signed-in user) and after CsrfViewMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 403 and not (
            getattr(response, RECORDED_ATTRIBUTE, False) or getattr(request, RECORDED_ATTRIBUTE, False)
        ):
            event_record(
                type=events.ACCESS_DENIED,
                outcome=events.FAILURE,
                request=request,
                reason=_reason(request, response),
                detail={"path": clean(request.path, 200), "method": clean(request.method, 16)},
            )
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        setattr(request, _VIEW_REACHED, True)
        return None
