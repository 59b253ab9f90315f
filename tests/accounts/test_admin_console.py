"""Operators manage accounts from the admin: lock, unlock, sign out everywhere, reset links, role members."""

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import LoginThrottle, Role, User, UserSession
from audit.models import Event

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"


def _signed_in_elsewhere(client_factory, user, password):
    other = client_factory()
    assert other.post("/login/", {"username": user.username, "password": password}).status_code == 302
    return other


@pytest.fixture
def client_factory():
    from django.test import Client

    return Client


def test_locking_a_user_ends_their_sessions_and_stops_sign_in(admin_client, make_user, password, client_factory):
    alice = make_user(username="alice", email="alice@example.com")
    browser = _signed_in_elsewhere(client_factory, alice, password)
    assert browser.get("/account/").status_code == 200

    response = admin_client.post(USERS, {"action": "lock_users", "_selected_action": [alice.pk]})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.is_active is False
    assert not UserSession.objects.filter(user=alice).exists()
    assert browser.get("/account/").status_code == 302  # signed out
    assert client_factory().post("/login/", {"username": "alice", "password": password}).status_code == 200
    locked = Event.objects.get(type="user.locked")
    assert locked.user_id == alice.pk and locked.detail["locked_by"] == "root"
    assert "locked" in admin_client.get(USERS).content.decode()


def test_an_administrator_cannot_lock_their_own_account(admin_client, admin_user):
    admin_client.post(USERS, {"action": "lock_users", "_selected_action": [admin_user.pk]})
    admin_user.refresh_from_db()
    assert admin_user.is_active is True
    assert not Event.objects.filter(type="user.locked").exists()


def test_unlocking_re_enables_sign_in_and_clears_sign_in_lockouts(admin_client, make_user, password, client_factory):
    alice = make_user(username="alice", email="alice@example.com")
    User.objects.filter(pk=alice.pk).update(is_active=False)
    now = timezone.now()
    LoginThrottle.objects.create(scope="user_ip", username="alice", ip="203.0.113.9", failures=9,
                                 first_failure_at=now, last_failure_at=now,
                                 locked_until=now + timezone.timedelta(minutes=5))
    admin_client.post(USERS, {"action": "unlock_users", "_selected_action": [alice.pk]})
    alice.refresh_from_db()
    assert alice.is_active is True
    assert not LoginThrottle.objects.exists()
    assert Event.objects.filter(type="user.unlocked").count() == 1
    assert Event.objects.filter(type="lockout.cleared").count() == 1
    assert client_factory().post("/login/", {"username": "alice", "password": password}).status_code == 302


def test_the_user_list_shows_a_running_sign_in_lockout(admin_client, make_user):
    make_user(username="alice", email="alice@example.com")
    now = timezone.now()
    LoginThrottle.objects.create(scope="user_ip", username="alice@example.com", ip="203.0.113.9", failures=5,
                                 first_failure_at=now, last_failure_at=now,
                                 locked_until=now + timezone.timedelta(minutes=1))
    assert "sign-in throttled" in admin_client.get(USERS).content.decode()


def test_signing_a_user_out_everywhere_from_the_admin(admin_client, make_user, password, client_factory):
    alice = make_user(username="alice")
    browser = _signed_in_elsewhere(client_factory, alice, password)
    admin_client.post(USERS, {"action": "sign_out_everywhere", "_selected_action": [alice.pk]})
    assert browser.get("/account/").status_code == 302
    event = Event.objects.get(type="user.signed_out_everywhere")
    assert event.user_id == alice.pk and event.detail["sessions_ended"] == 1


def test_sending_a_reset_link_from_the_admin_emails_a_link_on_the_issuer(admin_client, make_user, settings):
    settings.IDP_ISSUER = "https://id.example.com"
    alice = make_user(username="alice", email="alice@example.com")
    admin_client.post(USERS, {"action": "send_password_reset", "_selected_action": [alice.pk]})
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert "https://id.example.com/reset/" in mail.outbox[0].body
    event = Event.objects.get(type="password.reset_requested")
    assert event.user_id == alice.pk and event.detail["sent_by"] == "root"


def test_creating_a_user_without_a_password_emails_them_a_reset_link(admin_client, role):
    response = admin_client.post(f"{USERS}add/", {
        "username": "carol", "email": "carol@example.com", "usable_password": "false", "roles": [role.pk]})
    assert response.status_code == 302, response.context["adminform"].form.errors
    carol = User.objects.get(username="carol")
    assert not carol.has_usable_password()
    assert carol.role_names() == ["orders:write"]
    assert len(mail.outbox) == 1 and "/reset/" in mail.outbox[0].body
    assert Event.objects.filter(type="admin.change", reason="add").exists()


def test_creating_a_user_with_a_password_sends_nothing(admin_client, password):
    response = admin_client.post(f"{USERS}add/", {
        "username": "dave", "email": "dave@example.com", "usable_password": "true",
        "password1": password, "password2": password})
    assert response.status_code == 302
    assert User.objects.get(username="dave").check_password(password)
    assert mail.outbox == []


def test_role_members_are_added_and_removed_on_the_role_page(admin_client, make_user, role):
    alice, bob = make_user(username="alice"), make_user(username="bob", roles=["orders:write"])
    response = admin_client.post(f"/admin/accounts/role/{role.pk}/change/", {
        "name": role.name, "description": role.description, "members": [alice.pk]})
    assert response.status_code == 302
    assert list(Role.objects.get(pk=role.pk).users.values_list("username", flat=True)) == ["alice"]
    assert bob.role_names() == []
    assert Event.objects.filter(type="admin.change", detail__model="accounts.Role").exists()


def test_users_link_to_their_events(admin_client, make_user):
    alice = make_user(username="alice")
    assert f"user__id__exact={alice.pk}" in admin_client.get(USERS).content.decode()
    assert f"user__id__exact={alice.pk}" in admin_client.get(f"{USERS}{alice.pk}/change/").content.decode()


@pytest.fixture
def helpdesk(client, make_user):
    """A staff member allowed to view and change users, and nothing more."""
    from django.contrib.auth.models import Permission

    clerk = make_user(username="clerk", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client.force_login(User.objects.get(pk=clerk.pk))
    return client


def test_a_helpdesk_administrator_cannot_lock_or_sign_out_a_superuser(helpdesk, admin_user):
    helpdesk.post(USERS, {"action": "lock_users", "_selected_action": [admin_user.pk]})
    helpdesk.post(USERS, {"action": "sign_out_everywhere", "_selected_action": [admin_user.pk]})
    admin_user.refresh_from_db()
    assert admin_user.is_active is True
    assert not Event.objects.filter(type__in=["user.locked", "user.signed_out_everywhere"]).exists()
    assert helpdesk.post(f"{USERS}{admin_user.pk}/change/", {"username": "root"}).status_code == 403


def test_a_helpdesk_administrator_cannot_grant_themselves_or_others_privileges(helpdesk, make_user):
    alice = make_user(username="alice")
    page = helpdesk.get(f"{USERS}{alice.pk}/change/")
    form = page.context["adminform"].form
    for field in ("is_superuser", "is_staff", "groups", "user_permissions"):
        assert field not in form.fields  # shown read-only, never posted
