"""Receivers for Django's authentication signals: they note what happened to a session, and decide nothing."""

from accounts.services import user_session_end, user_session_start
from accounts.sessions import session_mark_authenticated


def remember_sign_in(sender, request, user, **kwargs) -> None:
    """After any login (form, admin, tests), note auth_time and sid in the new session."""
    if request is not None and hasattr(request, "session"):
        session_mark_authenticated(request.session)


def track_session_start(sender, request, user, **kwargs) -> None:
    """After any login, list the new session among the user's sessions (accounts.UserSession)."""
    if request is not None and hasattr(request, "session"):
        user_session_start(user=user, request=request)


def track_session_end(sender, request, user, **kwargs) -> None:
    """Before any logout (sign-out page, RP-initiated logout, admin, expiry), forget the session and record it."""
    if request is not None:
        user_session_end(user=user, request=request)
