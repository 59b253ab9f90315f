"""Users and roles are manageable from the Django admin."""

import pytest

from accounts.models import Role, User


@pytest.mark.django_db
def test_user_list_is_searchable_and_filterable_by_role(admin_client, make_user):
    make_user(username="alice", roles=["orders:write"])
    make_user(username="bob", roles=["admin"])
    orders = Role.objects.get(name="orders:write")
    response = admin_client.get("/admin/accounts/user/", {"roles__id__exact": orders.pk})
    assert response.status_code == 200
    names = [u.username for u in response.context["cl"].result_list]
    assert names == ["alice"]
    response = admin_client.get("/admin/accounts/user/", {"q": "bob"})
    assert [u.username for u in response.context["cl"].result_list] == ["bob"]
    assert "orders:write" in admin_client.get("/admin/accounts/user/").content.decode()


@pytest.mark.django_db
def test_roles_are_assignable_from_the_user_page(admin_client, make_user, role):
    user = make_user(username="alice")
    page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200
    assert str(user.subject) in page.content.decode()
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({"roles": [role.pk], "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    data.pop("last_login", None)
    data = {k: v for k, v in data.items() if k not in ("groups", "user_permissions", "password")}
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert user.role_names() == [role.name]


@pytest.mark.django_db
def test_admin_creates_a_user_with_a_role_and_a_password(admin_client, role, password):
    response = admin_client.post("/admin/accounts/user/add/", {
        "username": "newbie", "email": "newbie@example.com", "usable_password": "true",
        "password1": password, "password2": password, "roles": [role.pk], "_save": "Save",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(username="newbie")
    assert user.check_password(password)
    assert user.role_names() == [role.name]


@pytest.mark.django_db
def test_admin_refuses_a_username_differing_only_in_case(admin_client, make_user, password):
    make_user(username="alice")
    response = admin_client.post("/admin/accounts/user/add/", {
        "username": "ALICE", "usable_password": "true", "password1": password, "password2": password,
    })
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.filter(username__iexact="alice").count() == 1


@pytest.mark.django_db
def test_role_admin_lists_member_counts_and_creates_roles(admin_client, make_user):
    make_user(username="alice", roles=["admin"])
    make_user(username="bob", roles=["admin"])
    page = admin_client.get("/admin/accounts/role/")
    assert page.status_code == 200
    role = page.context["cl"].result_list[0]
    assert role._member_count == 2
    response = admin_client.post("/admin/accounts/role/add/", {"name": "billing:read", "description": "Read"})
    assert response.status_code == 302
    response = admin_client.post("/admin/accounts/role/add/", {"name": "Bad Name", "description": ""})
    assert response.status_code == 200
    assert "role name" in response.content.decode()


@pytest.mark.django_db
def test_admin_is_staff_only(client, make_user):
    client.force_login(make_user(username="plain"))
    response = client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
