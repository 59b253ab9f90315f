"""Clients in the admin: created through the service, the secret shown once, rotated and disabled."""

import base64

import pytest

from clients.models import Client
from idp.keys import signing_key_ensure

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/clients/client/add/"


def _create_form(**overrides):
    data = {
        "name": "Orders service",
        "client_type": "confidential",
        "grant_types": ["client-credentials"],
        "redirect_uris": "",
        "post_logout_redirect_uris": "",
        "allowed_origins": "",
        "allowed_scopes": "orders:read\norders:write",
        "audiences": "https://orders.example.com",
        "default_audience": "",
        "access_token_lifetime": "300",
        "refresh_token_lifetime": "2592000",
        "refresh_token_idle_lifetime": "1209600",
    }
    data.update(overrides)
    return data


def _token_status(client, client_id, secret):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")
    return response.status_code


def test_creating_a_client_shows_its_secret_once_and_stores_only_a_hash(admin_client):
    signing_key_ensure()
    response = admin_client.post(ADD_URL, _create_form())
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    client = Client.objects.get(name="Orders service")
    secret = response.context["client_secret"]
    assert len(secret) >= 43
    assert secret in response.content.decode()
    assert secret not in client.client_secret  # only the hash is stored
    assert client.audiences == ["https://orders.example.com"]
    assert client.scope_list == ["orders:read", "orders:write"]

    change_page = admin_client.get(f"/admin/clients/client/{client.pk}/change/").content.decode()
    assert secret not in change_page
    assert client.client_secret not in change_page  # not even the hash
    assert _token_status(admin_client, client.client_id, secret) == 200


def test_a_redirect_uri_the_token_endpoint_would_refuse_is_refused_and_nothing_is_created(admin_client):
    response = admin_client.post(ADD_URL, _create_form(
        name="Web app", grant_types=["authorization-code"], redirect_uris="http://app.example.com/callback"))
    assert response.status_code == 200
    assert "uses http on a non-loopback host" in response.content.decode()
    assert not Client.objects.filter(name="Web app").exists()


def test_rotating_a_secret_asks_first_then_shows_the_new_secret_once_and_the_old_one_stops_working(admin_client):
    signing_key_ensure()
    created = admin_client.post(ADD_URL, _create_form())
    client = Client.objects.get(name="Orders service")
    old_secret = created.context["client_secret"]
    url = f"/admin/clients/client/{client.pk}/rotate-secret/"

    confirmation = admin_client.get(url)
    assert confirmation.status_code == 200
    assert "stops working at once" in confirmation.content.decode()
    assert _token_status(admin_client, client.client_id, old_secret) == 200  # a GET changes nothing

    rotated = admin_client.post(url)
    new_secret = rotated.context["client_secret"]
    assert new_secret != old_secret
    assert "no-store" in rotated["Cache-Control"]
    assert _token_status(admin_client, client.client_id, old_secret) == 401
    assert _token_status(admin_client, client.client_id, new_secret) == 200


def test_disabling_clients_from_the_list_stops_their_tokens(admin_client):
    signing_key_ensure()
    created = admin_client.post(ADD_URL, _create_form())
    client = Client.objects.get(name="Orders service")
    response = admin_client.post("/admin/clients/client/",
                                 {"action": "disable_selected", "_selected_action": [client.pk]})
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.enabled is False
    assert _token_status(admin_client, client.client_id, created.context["client_secret"]) == 401


def test_the_client_list_shows_type_grants_audiences_and_the_last_token(admin_client):
    signing_key_ensure()
    created = admin_client.post(ADD_URL, _create_form())
    client = Client.objects.get(name="Orders service")
    page = admin_client.get("/admin/clients/client/").content.decode()
    assert "never" in page
    assert _token_status(admin_client, client.client_id, created.context["client_secret"]) == 200
    page = admin_client.get("/admin/clients/client/").content.decode()
    assert "client-credentials" in page
    assert "https://orders.example.com" in page
    assert "Confidential" in page
    assert "never" not in page


def test_staff_without_permissions_cannot_create_clients(client, make_user):
    clerk = make_user(username="clerk", is_staff=True)
    client.force_login(clerk)
    assert client.post(ADD_URL, _create_form()).status_code == 403
    assert not Client.objects.exists()


def test_the_first_party_api_client_can_be_edited_in_the_admin_without_a_redirect_uri(admin_client):
    from idp.api.services import first_party_client_ensure

    client, _ = first_party_client_ensure()
    page = admin_client.get(f"/admin/clients/client/{client.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({"name": "IdP web (renamed)", "redirect_uris": "", "exchange_policies-TOTAL_FORMS": "0",
                 "exchange_policies-INITIAL_FORMS": "0"})
    data["roles"] = []
    response = admin_client.post(f"/admin/clients/client/{client.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    client.refresh_from_db()
    assert client.name == "IdP web (renamed)"
