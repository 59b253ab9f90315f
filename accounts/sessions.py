"""What a browser session remembers about its sign-in (`auth_time`, `sid`, last activity) and when it must end."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime

from django.conf import settings

SESSION_AUTH_TIME = "idp_auth_time"
SESSION_SID = "idp_sid"
SESSION_LAST_ACTIVITY = "idp_last_activity"
# Primary key of the session's accounts.UserSession row: it survives the key cycling that
# update_session_auth_hash() does, so the row can follow the session to its new key.
SESSION_ROW = "idp_user_session"

# Why a session was ended by the server; stored as the `reason` of its `logout` event.
END_IDLE = "idle_timeout"
END_MAX_AGE = "max_lifetime"
END_REVOKED = "revoked"
END_PASSWORD_GUESSING = "password_guessing"  # too many wrong current passwords on the password-change page

# Activity is written to the session and its row at most this often, so most requests write nothing.
ACTIVITY_WRITE_INTERVAL = 60


def session_mark_authenticated(session) -> None:
    """Record when the user authenticated and give this sign-in a fresh OIDC session id.

    The session store and the cookie expire at `auth_time + SESSION_COOKIE_AGE` however often the session is
    written afterwards: the absolute lifetime does not slide.
    """
    now = int(time.time())
    session[SESSION_AUTH_TIME] = now
    session[SESSION_SID] = secrets.token_urlsafe(24)
    session[SESSION_LAST_ACTIVITY] = now
    session.set_expiry(datetime.fromtimestamp(now + settings.SESSION_COOKIE_AGE, tz=UTC))


def _activity_interval() -> int:
    # A very short idle timeout (tests, kiosks) needs activity written more often than once a minute.
    return max(1, min(ACTIVITY_WRITE_INTERVAL, settings.IDP_SESSION_IDLE_TIMEOUT // 2))


def session_end_reason(session, *, now: float) -> str | None:
    """Why this authenticated session must end now (idle or past its absolute lifetime), or None.

    A session that never recorded its sign-in time is treated as too old: it did not come through login().
    """
    auth_time = session.get(SESSION_AUTH_TIME)
    if not isinstance(auth_time, int) or now - auth_time > settings.SESSION_COOKIE_AGE:
        return END_MAX_AGE
    last_activity = session.get(SESSION_LAST_ACTIVITY, auth_time)
    if not isinstance(last_activity, int) or now - last_activity > settings.IDP_SESSION_IDLE_TIMEOUT:
        return END_IDLE
    return None


def session_activity_due(session, *, now: float) -> bool:
    """Whether enough time has passed since the recorded activity to record it again."""
    return now - session.get(SESSION_LAST_ACTIVITY, 0) >= _activity_interval()


def session_record_activity(session, *, now: float) -> None:
    """Note that the session was used now."""
    session[SESSION_LAST_ACTIVITY] = int(now)


def session_row_pk(session) -> int | None:
    """The primary key of the session's accounts.UserSession row, or None for a session without one."""
    return session.get(SESSION_ROW)


_BROWSERS = [  # order matters: Edge and Opera also say Chrome, Chrome also says Safari
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"(?:\b|Headless)(?:Chrome|CriOS)/")),
    ("Safari", re.compile(r"\bSafari/")),
]
_SYSTEMS = [
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
]


def browser_label(user_agent: str) -> str:
    """A short, human description of a User-Agent such as "Firefox on Linux"; "Unknown browser" otherwise."""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"Browser on {system}" if system else "Unknown browser")
