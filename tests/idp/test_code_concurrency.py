"""Two requests redeeming one authorization code at the same moment: exactly one gets tokens, the other is refused
as a replay and what the first was issued is revoked (RFC 6749 §4.1.2) (PostgreSQL)."""

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client as HttpClient
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from audit import events
from audit.models import Event
from clients.services import client_create
from idp.keys import signing_key_ensure
from idp.models import GrantContext
from tests.idp.row_lock_race import race_behind_row_lock

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
REDIRECT_URI = "https://rp.example.com/callback"
VERIFIER = "v" * 64

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


def _code(make_user, relying_party) -> str:
    signing_key_ensure()
    browser = HttpClient()
    browser.force_login(make_user(username="alice", email="alice@example.com", roles=["admin"]))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
    response = browser.get("/o/authorize/", {
        "client_id": relying_party.client.client_id, "response_type": "code", "redirect_uri": REDIRECT_URI,
        "scope": "openid profile", "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"})
    assert response.status_code == 302, response.content
    return parse_qs(urlsplit(response["Location"]).query)["code"][0]


def test_two_simultaneous_redemptions_of_one_code_issue_once_then_revoke_what_was_issued(make_user):
    relying_party = client_create(name="Relying party", client_type="confidential",
                                  grant_types=["authorization-code"], redirect_uris=[REDIRECT_URI],
                                  allowed_scopes=["openid", "profile"], audiences=["https://orders.example.com"],
                                  skip_consent=True)
    code = _code(make_user, relying_party)
    context = GrantContext.objects.get(redeemed_at__isnull=True)
    secret = relying_party.client_secret
    authorization = "Basic " + base64.b64encode(f"{relying_party.client.client_id}:{secret}".encode()).decode()
    # Both pass validation, then queue up to redeem the code's context behind its row lock, as racing ones do.
    answers = race_behind_row_lock(context, lambda: HttpClient().post("/o/token/", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": VERIFIER},
        HTTP_AUTHORIZATION=authorization))

    assert sorted(answer.status_code for answer in answers) == [200, 400]
    refused = next(answer for answer in answers if answer.status_code == 400)
    assert refused.json()["error"] == "invalid_grant"
    # The refused request's tokens were rolled back with its transaction; the winner's were revoked after it.
    assert AccessToken.objects.count() == 0
    assert RefreshToken.objects.count() == 1
    assert RefreshToken.objects.get().revoked is not None
    assert not Grant.objects.filter(code=code).exists()
    redeemed = GrantContext.objects.get(pk=context.pk)
    assert redeemed.redeemed_at is not None and redeemed.token_family == RefreshToken.objects.get().token_family
    replay = Event.objects.get(type=events.TOKEN_FAILED, reason="code_replay")
    assert replay.detail["cause"] == "used_concurrently" and replay.detail["family_revoked"] is True
    assert replay.detail["token_family"] == str(redeemed.token_family)
    assert Event.objects.filter(type=events.TOKEN_ISSUED).count() == 1
