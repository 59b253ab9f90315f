"""Two requests presenting one refresh token at the same moment: exactly one of them rotates it, and the other
revokes the family as a reuse does (PostgreSQL)."""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client as HttpClient
from oauth2_provider.models import get_refresh_token_model

from audit import events
from audit.models import Event

RefreshToken = get_refresh_token_model()

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


def _sign_in(make_user, password) -> str:
    from idp.keys import signing_key_ensure

    signing_key_ensure()
    make_user(username="alice", email="alice@example.com", roles=["admin"])
    browser = HttpClient()
    csrf = browser.get("/api/auth/csrf").json()["csrfToken"]
    response = browser.post("/api/auth/login", {"username": "alice", "password": password},
                            content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200, response.content
    return response.cookies[settings.IDP_REFRESH_COOKIE_NAME].value


def _waiting_for_locks() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = "
                       "current_database()")
        return cursor.fetchone()[0]


def test_two_simultaneous_uses_of_one_refresh_token_let_one_rotate_it_then_revoke_the_family(make_user, password):
    refresh = _sign_in(make_user, password)
    presented = RefreshToken.objects.get(revoked__isnull=True)
    answers: list = []

    def use() -> None:
        try:
            answers.append(HttpClient().post("/o/token/", {
                "grant_type": "refresh_token", "refresh_token": refresh,
                "client_id": settings.IDP_FIRST_PARTY_CLIENT_ID}))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use) for _ in range(2)]
    # Hold the row lock so that both requests pass validation and then queue up behind it, as two racing ones do.
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f"SELECT id FROM {RefreshToken._meta.db_table} WHERE id = %s FOR UPDATE",  # noqa: S608
                           [presented.pk])
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while _waiting_for_locks() < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _waiting_for_locks() == 2
            cursor.execute("COMMIT")
    finally:
        holder.close()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answer.status_code for answer in answers) == [200, 400]
    refused = next(answer for answer in answers if answer.status_code == 400)
    assert refused.json()["error"] == "invalid_grant"
    winner = next(answer for answer in answers if answer.status_code == 200).json()
    assert winner["refresh_token"] != refresh
    # Which of the two was the thief cannot be told: the whole family is revoked, the winner's successor included
    # (RFC 9700 §4.14.2), and the reuse is an audit event.
    assert not RefreshToken.objects.filter(token_family=presented.token_family, revoked__isnull=True).exists()
    assert RefreshToken.objects.filter(token_family=presented.token_family).count() == 2
    reuse = Event.objects.get(type=events.TOKEN_REFRESH_REUSED)
    assert reuse.detail["cause"] == "used_concurrently" and reuse.detail["family_revoked"] is True
