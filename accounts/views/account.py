"""The account page: profile, signed-in sessions and consented clients, each session and consent revocable."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from accounts.consents import consent_revoke, consents_for_user, scopes_described
from accounts.models import UserSession
from accounts.selectors import user_with_roles
from accounts.services import user_session_revoke, user_sessions_revoke_others
from accounts.session_selectors import user_sessions_active
from accounts.sessions import browser_label, session_row_pk


@require_safe
@never_cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Profile, active sessions (this one marked) and consents, with a POST form to end each."""
    user = user_with_roles(pk=request.user.pk)
    current = session_row_pk(request.session)
    sessions = list(user_sessions_active(user=user))
    for row in sessions:
        row.is_current = row.pk == current
        row.browser = browser_label(row.user_agent)
    context = {
        "profile": user,
        "roles": user.role_names(),
        "sessions": sessions,
        "other_sessions": sum(not row.is_current for row in sessions),
        "consents": [
            {"consent": consent, "scopes": scopes_described(consent.scopes)}
            for consent in consents_for_user(user=user)
        ],
    }
    return render(request, "accounts/account.html", context)


@require_POST
@login_required
def session_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """End one of the user's sessions; another user's session is a 404 and stays untouched."""
    try:
        row = user_session_revoke(user=request.user, session_pk=pk, request=request)
    except UserSession.DoesNotExist:
        raise Http404("No such session.") from None
    if not request.user.is_authenticated:  # it was this very session
        return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))
    messages.success(request, f"The session of {browser_label(row.user_agent)} was signed out.")
    return redirect("account")


@require_POST
@login_required
def sessions_revoke_others(request: HttpRequest) -> HttpResponse:
    """End every session of the user but this one."""
    ended = user_sessions_revoke_others(user=request.user, request=request)
    messages.success(request, f"Signed out of {ended} other session{'s' if ended != 1 else ''}.")
    return redirect("account")


@require_POST
@login_required
def consent_withdraw(request: HttpRequest, client_pk: int) -> HttpResponse:
    """Withdraw the user's consent to one client and revoke the client's tokens for the user; 404 if there are none."""
    if not consent_revoke(user=request.user, client_pk=client_pk, request=request):
        raise Http404("No such consent.")
    messages.success(request, "Access was revoked. The application will ask for your consent again.")
    return redirect("account")
