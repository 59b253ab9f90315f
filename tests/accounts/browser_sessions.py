"""Helpers for the session, account-page and password tests: sign in through the real page, read and age sessions."""

import time
from importlib import import_module

from django.conf import settings
from django.test import Client

from accounts.sessions import SESSION_AUTH_TIME, SESSION_LAST_ACTIVITY

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.5 Mobile/15E148 Safari/604.1")


def session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def sign_in(username, password, *, ip="198.51.100.7", user_agent=FIREFOX, client=None):
    """A client signed in through the login page (so login(), its signals and the key rotation all run)."""
    client = client or Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    response = client.post("/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content.decode()
    return client


def session_key(client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def stored_session(client):
    """The client's session as the session store holds it."""
    return session_store()(session_key=session_key(client))


def session_exists(key: str) -> bool:
    return session_store()().exists(key)


def age_session(client, *, idle: int = 0, since_sign_in: int = 0) -> None:
    """Move the stored last activity `idle` seconds and the sign-in time `since_sign_in` seconds into the past."""
    session = stored_session(client)
    now = int(time.time())
    if since_sign_in:
        session[SESSION_AUTH_TIME] = now - since_sign_in
    if idle:
        session[SESSION_LAST_ACTIVITY] = now - idle
    session.save()


def is_signed_in(client) -> bool:
    """Whether the client's session still opens the account page."""
    return client.get("/account/").status_code == 200
