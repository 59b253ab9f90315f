"""Two requests presenting one refresh token at the same moment: exactly one of them rotates it, and the other
revokes the family as a reuse does (PostgreSQL)."""

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client as HttpClient
from oauth2_provider.models import get_refresh_token_model

from audit import events
from audit.models import Event
from tests.idp.row_lock_race import race_behind_row_lock

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


def test_two_simultaneous_uses_of_one_refresh_token_let_one_rotate_it_then_revoke_the_family(make_user, password):
    refresh = _sign_in(make_user, password)
    presented = RefreshToken.objects.get(revoked__isnull=True)
    # Both pass validation, then queue up behind the row lock, as two racing requests do.
    answers = race_behind_row_lock(presented, lambda: HttpClient().post("/o/token/", {
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": settings.IDP_FIRST_PARTY_CLIENT_ID}))

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
