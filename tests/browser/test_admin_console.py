"""An administrator runs the console in a real browser (headless Chromium), and finds every change in the audit log.

Everything is done through the pages: sign in, links, labelled fields and buttons. The database is read only to
set up the administrator and the signing keys, and to check at the end that what the pages showed is what was
stored.
"""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from accounts.models import Role, User
from audit import events
from audit.models import Event
from clients.models import Client
from idp.models import SigningKey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROLE = "invoices:approve"
NEW_USER = "bob"
CLIENT_NAME = "Invoices web app"
AUDIENCE = "https://invoices.example.com"


def _active_kid() -> str:
    return SigningKey.objects.get(state=SigningKey.State.ACTIVE).kid


def _newest_seq() -> int:
    newest = Event.objects.order_by("-seq").first()
    return newest.seq if newest else 0


def _result_rows(page):
    """The rows of the admin change list's result table (its header row excluded)."""
    return page.locator("#result_list tbody tr")


def _open_console(page, idp):
    page.goto(f"{idp}/admin/")
    page.wait_for_url(f"{idp}/admin/")


def _events_of_type(page, idp, event_type: str):
    """Open the event log from the console and follow the sidebar link of one event type: only it is listed."""
    _open_console(page, idp)
    page.get_by_role("link", name="Event log").click()
    page.get_by_role("navigation", name="Filter").get_by_role("link", name=event_type, exact=True).click()
    page.wait_for_url(re.compile(r"[?&]type="))
    assert parse_qs(urlsplit(page.url).query)["type"] == [event_type]


def test_an_administrator_manages_roles_users_clients_and_keys_and_finds_each_change_in_the_audit_log(
    page, screenshot, idp, settings, admin_user, password
):
    # The next key published by signing_key_ensure() (in `idp`) may sign at once: no cache to outwait.
    settings.IDP_JWKS_MAX_AGE = 0
    settings.IDP_KEY_CACHE_SECONDS = 0
    # Wide enough for the event log's seven columns beside its filters in the screenshots.
    page.set_viewport_size({"width": 1440, "height": 900})
    first_active_kid = _active_kid()
    before = _newest_seq()

    # --- sign in -------------------------------------------------------------------------------------------
    page.goto(f"{idp}/admin/login/")
    screenshot(page, "01-login")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{idp}/admin/")
    expect(page.get_by_role("heading", name="Console")).to_be_visible()
    screenshot(page, "02-index")

    # --- a role ------------------------------------------------------------------------------------------
    page.get_by_role("link", name="Roles", exact=True).click()
    # Fold the navigation sidebar away (the admin remembers it) so the screenshots show the pages themselves.
    page.get_by_role("button", name="Toggle navigation").click()
    page.get_by_role("link", name="Add role").click()
    page.get_by_label("Name:", exact=True).fill(ROLE)
    page.get_by_label("Description:", exact=True).fill("Approve supplier invoices")
    screenshot(page, "03-role-add")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"{idp}/admin/accounts/role/")
    expect(page.get_by_text(f"The role “{ROLE}” was added successfully.")).to_be_visible()
    expect(_result_rows(page).get_by_role("link", name=ROLE)).to_be_visible()

    # --- a user with that role -----------------------------------------------------------------------------
    _open_console(page, idp)
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="Add user").click()
    page.get_by_label("Username:", exact=True).fill(NEW_USER)
    page.get_by_label("Email address:", exact=True).fill("bob@example.com")
    page.get_by_label("Enabled", exact=True).check()
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_label("Password confirmation:", exact=True).fill(password)
    page.get_by_role("listbox", name="Available roles").select_option(label=ROLE)
    page.get_by_role("button", name="Choose selected roles").click()
    expect(page.get_by_role("listbox", name="Chosen roles").get_by_role("option")).to_have_text([ROLE])
    screenshot(page, "04-user-add")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/accounts/user/\d+/change/"))
    screenshot(page, "05-user-change")

    # --- a confidential client, its secret shown once ---------------------------------------------------------
    _open_console(page, idp)
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_role("link", name="Add client").click()
    page.get_by_label("Name:", exact=True).fill(CLIENT_NAME)
    page.get_by_label("Client type:", exact=True).select_option(label="Confidential")
    page.get_by_label("Authorization code with PKCE (people signing in)").check()
    page.get_by_label("Client credentials (a service acting for itself)").check()
    page.get_by_label("Redirect URIs:", exact=True).fill("https://invoices.example.com/callback")
    page.get_by_label("Allowed scopes:", exact=True).fill("openid profile email roles")
    page.get_by_label("Audiences:", exact=True).fill(AUDIENCE)
    screenshot(page, "06-client-add")
    page.get_by_role("button", name="Create client").click()
    expect(page.get_by_text("This is the only time the secret is shown.")).to_be_visible()
    client_id = page.locator("#client-id").inner_text()
    client_secret = page.locator("#client-secret").inner_text()
    assert client_id and len(client_secret) >= 32
    screenshot(page, "07-client-secret")
    # The secret shown is the client's real one: the token endpoint accepts it.
    token = requests.post(f"{idp}/o/token/", data={"grant_type": "client_credentials"}, auth=(client_id, client_secret),
                          timeout=10)
    assert token.status_code == 200, token.text
    page.get_by_role("link", name="I have copied it: go to the client").click()
    page.wait_for_url(re.compile(r"/admin/clients/client/\d+/change/"))
    expect(page.get_by_text(client_id).first).to_be_visible()
    assert client_secret not in page.content()
    screenshot(page, "08-client-change-without-secret")
    page.reload()
    assert client_secret not in page.content()

    # --- rotate the signing keys -------------------------------------------------------------------------------
    _open_console(page, idp)
    page.get_by_role("link", name="Signing keys").first.click()
    page.get_by_role("link", name="Rotate keys…").click()
    expect(page.get_by_role("table", name="Keys now").get_by_text(first_active_kid)).to_be_visible()
    screenshot(page, "09-key-rotate-confirmation")
    page.get_by_role("button", name="Yes, rotate the signing keys").click()
    page.wait_for_url(f"{idp}/admin/idp/signingkey/")
    new_active_kid = _active_kid()
    assert new_active_kid != first_active_kid
    expect(page.get_by_text(f"Promoted {new_active_kid} to active")).to_be_visible()
    expect(page.get_by_text(f"Retired {first_active_kid}")).to_be_visible()
    screenshot(page, "10-key-list-after-rotation")

    # --- preview bob's token: the new role, signed by the new key, and nothing written --------------------------
    _open_console(page, idp)
    before_preview = _newest_seq()
    page.get_by_role("link", name="Token preview").click()
    page.get_by_label("Client:", exact=True).select_option(label=f"{CLIENT_NAME} ({client_id})")
    page.get_by_label("User (username or email):", exact=True).fill(NEW_USER)
    page.get_by_label("Scopes:", exact=True).fill("openid profile roles")
    page.get_by_role("button", name="Preview").click()
    access = json.loads(page.get_by_label("Access token header and claims").inner_text())
    assert access["header"]["kid"] == new_active_kid
    assert access["claims"]["roles"] == [ROLE]
    assert access["claims"]["aud"] == AUDIENCE
    assert access["claims"]["client_id"] == client_id
    id_token = json.loads(page.get_by_label("ID token header and claims").inner_text())
    assert id_token["claims"]["roles"] == [ROLE]
    screenshot(page, "11-token-preview")
    assert _newest_seq() == before_preview  # a preview issues, signs and records nothing

    # --- every change in the audit log ---------------------------------------------------------------------------
    _events_of_type(page, idp, events.ADMIN_CHANGE)
    expect(_result_rows(page)).to_have_count(2)
    for row in range(2):
        expect(_result_rows(page).nth(row).get_by_role("cell", name="add", exact=True)).to_be_visible()
        expect(_result_rows(page).nth(row).get_by_role("cell", name="root", exact=True)).to_be_visible()
    screenshot(page, "12-audit-admin-changes")
    for position, (model, name) in enumerate([("accounts.User", NEW_USER), ("accounts.Role", ROLE)]):
        _result_rows(page).nth(position).get_by_role("link").first.click()
        detail = json.loads(page.locator("pre.audit-detail").inner_text())
        assert (detail["action"], detail["model"], detail["object_repr"]) == ("add", model, name)
        screenshot(page, f"13-audit-admin-change-{model.split('.')[1].lower()}")
        page.go_back()

    _events_of_type(page, idp, events.CLIENT_CREATED)
    page.get_by_label("Client ID").fill(client_id)
    page.get_by_label("Client ID").press("Enter")
    page.wait_for_url(re.compile(r"[?&]client_id="))
    expect(_result_rows(page)).to_have_count(1)
    expect(_result_rows(page).first.get_by_text(client_id)).to_be_visible()
    screenshot(page, "14-audit-client-created")

    _events_of_type(page, idp, events.KEY_ROTATED)
    expect(_result_rows(page)).to_have_count(1)
    expect(_result_rows(page).first.get_by_role("cell", name="rotated", exact=True)).to_be_visible()
    screenshot(page, "15-audit-key-rotated")
    _result_rows(page).first.get_by_role("link").first.click()
    detail = json.loads(page.locator("pre.audit-detail").inner_text())
    assert detail["states"][first_active_kid] == "retired"
    assert detail["states"][new_active_kid] == "active"
    screenshot(page, "16-audit-key-rotated-detail")

    # --- what the pages showed is what was stored ------------------------------------------------------------------
    role = Role.objects.get(name=ROLE)
    bob = User.objects.get(username=NEW_USER)
    assert list(bob.roles.all()) == [role]
    assert bob.check_password(password)
    client = Client.objects.get(client_id=client_id)
    assert client.client_type == Client.CLIENT_CONFIDENTIAL
    assert client.client_secret != client_secret  # only its hash is stored

    written = Event.objects.filter(seq__gt=before, user=admin_user)
    changes = written.filter(type=events.ADMIN_CHANGE, reason="add").order_by("seq")
    assert [(event.detail["model"], event.detail["object_id"]) for event in changes] == [
        ("accounts.Role", str(role.pk)), ("accounts.User", str(bob.pk))]
    assert written.filter(type=events.CLIENT_CREATED, client_id=client_id).count() == 1
    rotated = written.get(type=events.KEY_ROTATED, reason="rotated")
    assert rotated.detail["states"] == {
        new_active_kid: "active", first_active_kid: "retired",
        SigningKey.objects.get(state=SigningKey.State.NEXT).kid: "next",
    }
    assert all(client_secret not in json.dumps(event.detail) for event in Event.objects.all())
    assert page.csp_violations == []
