"""The Content-Security-Policy and Permissions-Policy in a real Chromium: enforced, and breaking no page (admin too)."""

import pytest

from tests.accounts.oauth_browser import authorize_url, make_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_no_page_breaks_the_content_security_policy_admin_included(page, live_server, make_user, password):
    problems, failed_responses = [], []
    page.on("console", lambda message: problems.append(message.text) if message.type in {"error", "warning"} else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda response: failed_responses.append(response.url) if response.status >= 400 else None)
    make_user(username="root", email="root@example.com", is_superuser=True, is_staff=True)
    issued = make_client()

    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/admin/")
    visited = ["/admin/"]
    for path in ("/admin/accounts/user/", "/admin/accounts/user/add/", "/admin/accounts/role/add/",
                 "/admin/clients/client/", "/admin/clients/client/add/", "/admin/password_change/",
                 "/account/", "/account/password/", "/logout/", "/no-such-page/",
                 authorize_url(issued, scope="openid email orders:read")):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status < 500, path
        visited.append(path)
    # An admin page with its scripts working: the changelist's select-all checkbox is driven by admin/js/actions.js.
    page.goto(f"{live_server.url}/admin/accounts/user/")
    page.locator("#action-toggle").check()
    assert page.locator("input.action-select").first.is_checked()
    page.goto(f"{live_server.url}/logout/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/login/")

    assert failed_responses == [f"{live_server.url}/no-such-page/"]  # only the 404 asked for; no asset is missing
    # Chromium logs that 404 as a failed load; anything else (a CSP refusal, an unknown Permissions-Policy feature,
    # a script error) is a problem.
    assert {text for text in problems if not text.startswith("Failed to load resource")} == set(), visited
    assert page.csp_violations == []

    # The policy is really enforced: an injected inline script is refused, and Chromium says so.
    page.goto(f"{live_server.url}/login/")
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
                  " document.body.appendChild(s); }")
    assert page.evaluate("() => window.injected === undefined")
    assert any("Content Security Policy" in text for text in page.csp_violations)
