"""Receivers for Django's authentication signals."""

from accounts.sessions import session_mark_authenticated


def remember_sign_in(sender, request, user, **kwargs) -> None:
    """After any login (form, admin, tests), note auth_time and sid in the new session."""
    if request is not None and hasattr(request, "session"):
        session_mark_authenticated(request.session)
