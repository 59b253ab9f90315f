"""Administrative changes leave an audit event: admin edits of users and roles, key rotation, and client changes."""

import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import Role, User
from audit import events
from audit.models import Event
from clients.models import Client
from idp.keys import next_key_lead_time, signing_key_ensure, signing_key_rotate
from idp.models import SigningKey

pytestmark = pytest.mark.django_db


def admin_changes(**lookup):
    return list(Event.objects.filter(type=events.ADMIN_CHANGE, **lookup).order_by("seq"))


def change_form_data(page) -> dict:
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({"date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    return {k: v for k, v in data.items() if k not in ("groups", "user_permissions", "password", "last_login")}


# --- Users and roles in the admin. --------------------------------------------------------------------------------


def test_adding_a_user_in_the_admin_is_recorded_with_who_did_it(admin_client, admin_user, role, password):
    response = admin_client.post("/admin/accounts/user/add/", {
        "username": "newbie", "email": "newbie@example.com", "usable_password": "true",
        "password1": password, "password2": password, "roles": [role.pk], "_save": "Save",
    })
    assert response.status_code == 302
    newbie = User.objects.get(username="newbie")

    [event] = admin_changes()
    assert (event.outcome, event.reason, event.user, event.username) == ("success", "add", admin_user, "root")
    assert event.detail == {"action": "add", "model": "accounts.User", "object_id": str(newbie.pk),
                            "object_repr": "newbie", "message": [{"added": {}}]}
    assert password not in json.dumps(event.detail)
    assert LogEntry.objects.filter(object_id=str(newbie.pk)).exists()  # Django's own history is kept


def test_changing_a_user_in_the_admin_is_recorded_with_the_fields_changed(admin_client, make_user, role):
    alice = make_user(username="alice")
    page = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/")
    data = {**change_form_data(page), "email": "alice@new.example.com", "roles": [role.pk]}
    response = admin_client.post(f"/admin/accounts/user/{alice.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    [event] = admin_changes()
    assert event.reason == "change"
    assert event.detail["object_id"] == str(alice.pk)
    changed = event.detail["message"][0]["changed"]["fields"]
    assert set(changed) >= {"Email address", "Roles"}
    assert "alice@new.example.com" not in json.dumps(event.detail)  # field names, never values


def test_setting_a_password_in_the_admin_is_recorded_without_the_password(admin_client, make_user, password):
    alice = make_user(username="alice")
    new_password = "another-long-passphrase-77"
    response = admin_client.post(f"/admin/accounts/user/{alice.pk}/password/", {
        "password1": new_password, "password2": new_password, "usable_password": "true",
    })
    assert response.status_code == 302
    [event] = admin_changes()
    assert event.reason == "change"
    assert new_password not in json.dumps(event.detail)
    assert "password" in json.dumps(event.detail["message"]).lower()


def test_deleting_a_user_in_the_admin_is_recorded_before_the_row_is_gone(admin_client, make_user):
    alice = make_user(username="alice")
    response = admin_client.post(f"/admin/accounts/user/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(username="alice").exists()
    [event] = admin_changes()
    assert event.detail == {"action": "delete", "model": "accounts.User", "object_id": str(alice.pk),
                            "object_repr": "alice", "message": ""}


def test_adding_changing_and_deleting_a_role_in_the_admin_are_each_recorded(admin_client):
    admin_client.post("/admin/accounts/role/add/", {"name": "billing:read", "description": "Read"})
    role = Role.objects.get(name="billing:read")
    admin_client.post(f"/admin/accounts/role/{role.pk}/change/", {"name": "billing:read", "description": "Read it"})
    admin_client.post(f"/admin/accounts/role/{role.pk}/delete/", {"post": "yes"})

    recorded = [(event.reason, event.detail["model"], event.detail["object_repr"]) for event in admin_changes()]
    assert recorded == [("add", "accounts.Role", "billing:read"), ("change", "accounts.Role", "billing:read"),
                        ("delete", "accounts.Role", "billing:read")]
    assert not Role.objects.exists()


def test_bulk_deleting_roles_records_one_event_per_role(admin_client):
    roles = [Role.objects.create(name=name) for name in ("a:read", "b:read", "c:read")]
    response = admin_client.post("/admin/accounts/role/", {
        "action": "delete_selected", "_selected_action": [role.pk for role in roles], "post": "yes",
    })
    assert response.status_code == 302
    assert not Role.objects.exists()
    recorded = sorted(event.detail["object_repr"] for event in admin_changes(reason="delete"))
    assert recorded == ["a:read", "b:read", "c:read"]


def test_a_refused_admin_form_records_nothing(admin_client):
    response = admin_client.post("/admin/accounts/role/add/", {"name": "Bad Name", "description": ""})
    assert response.status_code == 200
    assert not Role.objects.exists()
    assert admin_changes() == []


# --- Signing keys. -------------------------------------------------------------------------------------------------


def test_keys_rotate_is_recorded_with_each_key_and_its_new_state(capsys):
    signing_key_ensure()
    active = SigningKey.objects.get(state="active").kid
    upcoming = SigningKey.objects.get(state="next").kid
    SigningKey.objects.filter(kid=upcoming).update(created=timezone.now() - next_key_lead_time())

    call_command("keys", "rotate")

    created = SigningKey.objects.get(state="next").kid
    [event] = Event.objects.filter(type=events.KEY_ROTATED)
    assert (event.outcome, event.reason, event.user) == ("success", "rotated", None)
    assert event.detail["states"] == {upcoming: "active", active: "retired", created: "next"}
    assert "retired_until" in event.detail
    assert "PRIVATE" not in json.dumps(event.detail)


def test_a_deferred_rotation_is_recorded_as_deferred(capsys):
    signing_key_ensure()
    call_command("keys", "rotate")  # the next key was published just now: too early to promote it
    [event] = Event.objects.filter(type=events.KEY_ROTATED)
    assert event.reason == "deferred"
    assert event.detail["states"] == {}
    assert "deferred_until" in event.detail


def test_a_rotation_asked_for_by_an_administrator_names_them(admin_user):
    signing_key_ensure()
    request = RequestFactory().post("/admin/idp/signingkey/rotate/")
    request.user = admin_user
    signing_key_rotate(now=timezone.now() + timedelta(hours=1), request=request)
    [event] = Event.objects.filter(type=events.KEY_ROTATED)
    assert (event.user, event.username, event.reason) == (admin_user, "root", "rotated")


# --- Clients, through the CLI (which calls the services the admin calls). -----------------------------------------


def test_client_create_rotate_secret_and_disable_are_each_recorded_without_the_secret(capsys):
    call_command("client", "create", "--name", "Orders service", "--type", "confidential",
                 "--grant", "client-credentials", "--scope", "orders:read", "--audience", "https://orders.example.com",
                 "--json")
    issued = json.loads(capsys.readouterr().out)
    client_id, first_secret = issued["client_id"], issued["client_secret"]
    call_command("client", "rotate-secret", client_id, "--json")
    second_secret = json.loads(capsys.readouterr().out)["client_secret"]
    call_command("client", "disable", client_id)

    recorded = list(Event.objects.filter(type__startswith="client.").order_by("seq"))
    assert [(event.type, event.client_id) for event in recorded] == [
        (events.CLIENT_CREATED, client_id), (events.CLIENT_SECRET_ROTATED, client_id),
        (events.CLIENT_DISABLED, client_id),
    ]
    created = recorded[0].detail
    assert created["client_type"] == "confidential"
    assert created["grant_types"] == ["client-credentials"]
    assert created["audiences"] == ["https://orders.example.com"]
    everything = json.dumps([event.detail for event in recorded])
    assert first_secret not in everything and second_secret not in everything
    stored_hash = Client.objects.get(client_id=client_id).client_secret
    assert stored_hash not in everything
    assert Client.objects.get(client_id=client_id).enabled is False


def test_a_refused_client_creation_records_nothing(capsys):
    with pytest.raises(Exception, match="redirect URI"):
        call_command("client", "create", "--name", "Web", "--type", "confidential", "--grant", "authorization-code")
    assert not Client.objects.exists()
    assert not Event.objects.filter(type=events.CLIENT_CREATED).exists()


@pytest.mark.django_db
def test_revoking_a_token_or_adding_a_group_in_the_admin_is_audited(admin_client):
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model

    from clients.services import client_create

    service = client_create(name="svc", client_type="confidential", grant_types=["client-credentials"],
                            allowed_scopes=["a"], audiences=["https://a.example.com"]).client
    token = get_access_token_model().objects.create(application=service, token="x", token_checksum="c" * 64,
                                                    expires=timezone.now(), scope="a")
    response = admin_client.post("/admin/oauth2_provider/accesstoken/",
                                 {"action": "revoke_tokens", "_selected_action": [token.pk]})
    assert response.status_code == 302
    assert not get_access_token_model().objects.filter(pk=token.pk).exists()
    event = Event.objects.get(type="admin.change", reason="revoke")
    assert event.detail["model"] == "oauth2_provider.AccessToken" and event.username == "root"
    admin_client.post("/admin/auth/group/add/", {"name": "helpdesk"})
    assert Group.objects.filter(name="helpdesk").exists()
    assert Event.objects.filter(type="admin.change", reason="add", detail__model="auth.Group").exists()
