"""Signing keys and the token preview in the admin console."""

import pytest
from oauth2_provider.models import get_access_token_model

from clients.services import client_create
from idp.keys import active_signing_key, signing_key_ensure
from idp.models import SigningKey

pytestmark = pytest.mark.django_db


def test_the_key_list_shows_public_facts_and_never_private_material(admin_client):
    signing_key_ensure()
    page = admin_client.get("/admin/idp/signingkey/").content.decode()
    for key in SigningKey.objects.all():
        assert key.kid in page
        assert bytes(key.private_key_encrypted).decode() not in page
    assert "2048" in page and "RS256" in page and "active" in page
    detail = admin_client.get(f"/admin/idp/signingkey/{SigningKey.objects.first().pk}/change/").content.decode()
    assert "PRIVATE" not in detail and "private_key" not in detail


def test_keys_cannot_be_added_edited_or_deleted_in_the_admin(admin_client):
    signing_key_ensure()
    key = SigningKey.objects.get(state="active")
    assert admin_client.get("/admin/idp/signingkey/add/").status_code == 403
    assert admin_client.post(f"/admin/idp/signingkey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SigningKey.objects.filter(pk=key.pk, state="active").exists()


def test_rotation_asks_for_confirmation_then_promotes_the_next_key(admin_client, settings):
    settings.IDP_JWKS_MAX_AGE = 0
    settings.IDP_KEY_CACHE_SECONDS = 0
    signing_key_ensure()
    before = active_signing_key().kid
    next_kid = SigningKey.objects.get(state="next").kid
    confirmation = admin_client.get("/admin/idp/signingkey/rotate/")
    assert confirmation.status_code == 200
    assert "Yes, rotate the signing keys" in confirmation.content.decode()
    assert active_signing_key().kid == before  # nothing happens on GET

    response = admin_client.post("/admin/idp/signingkey/rotate/", follow=True)
    assert response.status_code == 200
    assert SigningKey.objects.get(state="active").kid == next_kid
    assert SigningKey.objects.get(kid=before).state == "retired"
    assert f"Promoted {next_kid} to active" in response.content.decode()


def test_staff_who_are_not_superusers_cannot_rotate_keys(client, make_user):
    signing_key_ensure()
    client.force_login(make_user(username="clerk", is_staff=True))
    active = SigningKey.objects.get(state="active").kid
    assert client.post("/admin/idp/signingkey/rotate/").status_code == 403
    assert SigningKey.objects.get(state="active").kid == active


@pytest.fixture
def web_app(db):
    return client_create(
        name="Orders web", client_type="confidential", grant_types=["authorization-code"],
        redirect_uris=["https://orders.example.com/cb"], allowed_scopes=["openid", "profile", "email", "roles"],
        audiences=["https://orders.example.com"],
    ).client


def test_token_preview_shows_access_and_id_token_claims_without_issuing_a_token(admin_client, web_app, make_user):
    signing_key_ensure()
    alice = make_user(username="alice", email="alice@example.com", first_name="Alice", roles=["admin"])
    response = admin_client.get("/admin/token-preview/", {"client": web_app.pk, "user": "alice@example.com",
                                                          "scope": "openid email roles"})
    assert response.status_code == 200
    preview = response.context["preview"]
    access = preview["access_token"]["claims"]
    assert access["sub"] == str(alice.subject)
    assert access["aud"] == "https://orders.example.com"
    assert access["roles"] == ["admin"]
    assert access["scope"] == "openid email roles"
    assert "email" not in access  # RFC 9068 access tokens carry no personal data here
    assert preview["access_token"]["header"]["typ"] == "at+jwt"
    id_claims = preview["id_token"]["claims"]
    assert id_claims["aud"] == web_app.client_id
    assert id_claims["email"] == "alice@example.com"
    assert "name" not in id_claims  # no profile scope asked
    assert get_access_token_model().objects.count() == 0


def test_token_preview_refuses_scopes_and_audiences_the_client_may_not_have(admin_client, web_app, make_user):
    signing_key_ensure()
    make_user(username="alice")
    response = admin_client.get("/admin/token-preview/", {"client": web_app.pk, "user": "alice",
                                                          "scope": "openid orders:write",
                                                          "audience": "https://bank.example.com"})
    form = response.context["form"]
    assert "orders:write" in str(form.errors["scope"])
    assert "audience" in form.errors
    assert response.context["preview"] is None


def test_token_preview_of_a_service_token_uses_the_client_as_subject(admin_client):
    signing_key_ensure()
    service = client_create(name="Billing", client_type="confidential", grant_types=["client-credentials"],
                            allowed_scopes=["billing:read"], audiences=["https://billing.example.com"]).client
    response = admin_client.get("/admin/token-preview/", {"client": service.pk})
    claims = response.context["preview"]["access_token"]["claims"]
    assert claims["sub"] == service.client_id
    assert response.context["preview"]["id_token"] is None


def test_the_console_landing_page_shows_counts_alerts_and_sign_in_failure_charts(admin_client, make_user):
    from django.test import RequestFactory

    from audit import events
    from audit.services import event_record

    make_user(username="alice")
    event_record(type=events.LOGIN_FAILED, outcome=events.FAILURE, username="alice", reason="bad_password",
                 request=RequestFactory().post("/login/", REMOTE_ADDR="203.0.113.7"))
    event_record(type=events.ALERT_PASSWORD_SPRAYING, outcome=events.ALERT, reason="ip:203.0.113.7")
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    html = page.content.decode()
    counts = dict((label, count) for label, count, _ in page.context["counts"])
    assert counts["Users"] == 2
    assert "alert.password_spraying" in html
    assert "Sign-in failures and alerts per hour, last 24 hours" in html
    daily = page.context["charts"][0]
    assert sum(failures for _, failures, _ in daily.rows) == 1
    assert "<script>" not in html  # the charts are SVG rendered on the server


def test_the_console_is_for_staff_only(client, make_user):
    client.force_login(make_user(username="alice"))
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_view_rights_cannot_preview_tokens_or_read_the_dashboard(client, make_user, web_app):
    signing_key_ensure()
    make_user(username="alice", email="alice@example.com")
    client.force_login(make_user(username="clerk", is_staff=True))
    response = client.get("/admin/token-preview/", {"client": web_app.pk, "user": "alice"})
    assert response.status_code == 403
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "counts" not in index.context and "Recent alerts" not in index.content.decode()
