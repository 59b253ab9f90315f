"""What a browser session remembers about its sign-in, for OpenID Connect (`auth_time`, `sid`)."""

import secrets
import time

SESSION_AUTH_TIME = "idp_auth_time"
SESSION_SID = "idp_sid"


def session_mark_authenticated(session) -> None:
    """Record when the user authenticated and give this sign-in a fresh OIDC session id."""
    session[SESSION_AUTH_TIME] = int(time.time())
    session[SESSION_SID] = secrets.token_urlsafe(24)
