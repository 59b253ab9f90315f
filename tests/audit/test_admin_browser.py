"""The audit admin in a real Chromium: the filters work from the keyboard and the dashboard draws under the CSP."""

import re

import pytest
from django.test import RequestFactory

from audit import events
from audit.services import event_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def record(*, type=events.LOGIN_FAILED, outcome=events.FAILURE, ip, **fields) -> None:
    assert event_record(type=type, outcome=outcome, request=RequestFactory().get("/", REMOTE_ADDR=ip), **fields)


def test_the_event_list_and_dashboard_work_in_a_browser_under_the_content_security_policy(  # noqa: F811
    page, live_server, make_user, password, screenshot  # noqa: F811
):
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type in {"error", "warning"} else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    failed = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    make_user(username="root", email="root@example.com", is_superuser=True)
    record(username="mallory", reason="bad_password", ip="203.0.113.9")
    record(username="alice", reason="bad_password", ip="10.0.0.1")
    record(type=events.ALERT_BRUTE_FORCE, outcome=events.ALERT, username="mallory", ip="203.0.113.9")
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/admin/audit/event/?outcome__exact=failure")
    # The IP filter is a labelled text box: typed and submitted with the keyboard, it keeps the other filters.
    page.get_by_label("IP address", exact=True).fill("203.0.113.9")
    page.get_by_label("IP address", exact=True).press("Enter")
    page.wait_for_url(re.compile(r".*ip=203\.0\.113\.9.*"))
    assert "outcome__exact=failure" in page.url
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "mallory" in rows.first.inner_text()
    screenshot(page, "filtered-list")

    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{live_server.url}/admin/audit/event/dashboard/")
    assert page.locator("svg.audit-chart-svg").count() == 2
    # The stylesheet applies (no inline styles to fall back on): failure bars are filled red.
    fill = page.locator("rect.bar-failure").last.evaluate("bar => getComputedStyle(bar).fill")
    assert fill == "rgb(186, 33, 33)"
    assert page.get_by_role("img", name=re.compile("Failures and alerts per hour")).count() == 1
    screenshot(page, "dashboard")

    # Chromium asks for /favicon.ico on its own (a 404 logged as a failed load); every asset of these pages loads.
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
    assert [text for text in problems if not text.startswith("Failed to load resource")] == []
    assert page.csp_violations == []
