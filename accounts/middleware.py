"""Ends browser sessions on the server: after the idle timeout, past the absolute lifetime, or once revoked."""

from __future__ import annotations

import time

from accounts.services import user_session_expire, user_session_follow_key, user_session_touch
from accounts.sessions import (
    END_REVOKED,
    session_activity_due,
    session_end_reason,
    session_record_activity,
)


class SessionActivityMiddleware:
    """Runs after AuthenticationMiddleware, so `request.user` is the session's user.

    For a signed-in session, on every request:
    - past IDP_SESSION_IDLE_TIMEOUT since its last recorded activity, or SESSION_COOKIE_AGE since sign-in (OWASP
      Session Management Cheat Sheet: idle and absolute timeouts are enforced by the server, not the cookie), the
      session is logged out before the view runs, so the view sees an anonymous visitor;
    - a session whose accounts.UserSession row is gone (revoked from the account page or by an administrator) is
      logged out too, even if the session store still holds it;
    - otherwise its activity is written to the session and its row at most about once a minute, so most requests
      cost one indexed read and no write.
    After the view, a session whose key was cycled (a password change) has its row pointed at the new key.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key_before = request.session.session_key
        if request.user.is_authenticated:
            self._end_if_over(request)
        response = self.get_response(request)
        if request.session.session_key != key_before and request.user.is_authenticated:
            user_session_follow_key(request=request)
        return response

    def _end_if_over(self, request) -> None:
        now = time.time()
        session = request.session
        reason = session_end_reason(session, now=now)
        if reason is None:
            due = session_activity_due(session, now=now)
            if not user_session_touch(user=request.user, request=request, record_activity=due):
                reason = END_REVOKED
            elif due:
                session_record_activity(session, now=now)
        if reason is not None:
            user_session_expire(request=request, reason=reason)
