"""Every browser page the IdP renders: the shared layout, labelled inputs, CSRF on forms, no inline or remote code."""

from html.parser import HTMLParser

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client as BrowserClient
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from idp.keys import signing_key_ensure
from tests.accounts.oauth_browser import (
    POST_LOGOUT_REDIRECT_URI,
    authorize_url,
    exchange_code,
    make_client,
    redirect_query,
)

ERROR_URLS = "tests.idp.error_urls"
ASSET_ATTRIBUTES = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "embed": "src",
                    "object": "data", "audio": "src", "video": "src", "track": "src", "use": "href"}
UNLABELLED_INPUT_TYPES = {"hidden", "submit", "button", "reset", "image"}


class PageAudit(HTMLParser):
    """Collects what the checks below need from one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.label_targets: set[str] = set()
        self.fields: list[dict] = []
        self.forms: list[dict] = []
        self.h1_count = 0
        self.html_lang = ""
        self.stylesheets: list[str] = []
        self.title = ""
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self._open.append(tag)
        for name, value in attributes.items():
            if name.startswith("on"):
                self.problems.append(f"inline event handler {name}= on <{tag}>")
            if name == "style":
                self.problems.append(f"inline style= on <{tag}>")
            if name in {"href", "src", "action", "formaction"} and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script" and not attributes.get("src"):
            self.problems.append("<script> without src (inline script)")
        asset = ASSET_ATTRIBUTES.get(tag)
        if asset and attributes.get(asset) and _is_remote(attributes[asset]):
            self.problems.append(f"remote asset <{tag} {asset}={attributes[asset]}>")
        if tag == "html":
            self.html_lang = attributes.get("lang", "")
        if tag == "h1":
            self.h1_count += 1
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes.get("href", ""))
        if tag == "label" and attributes.get("for"):
            self.label_targets.add(attributes["for"])
        if tag == "form":
            self.forms.append({"method": (attributes.get("method") or "get").lower(), "has_csrf": False})
        if tag == "input" and attributes.get("name") == "csrfmiddlewaretoken" and self.forms:
            self.forms[-1]["has_csrf"] = True
        if tag in {"input", "select", "textarea"}:
            if tag != "input" or (attributes.get("type") or "text").lower() not in UNLABELLED_INPUT_TYPES:
                self.fields.append({"tag": tag, **attributes})

    def handle_endtag(self, tag):
        if tag in self._open:
            while self._open and self._open.pop() != tag:
                pass

    def handle_data(self, data):
        if self._open and self._open[-1] == "title":
            self.title += data


def _is_remote(url: str) -> bool:
    url = url.strip().lower()
    return url.startswith(("http:", "https:", "//"))


def audit_page(response) -> PageAudit:
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    page = PageAudit()
    page.feed(response.content.decode())
    return page


def assert_well_formed_page(response) -> None:
    page = audit_page(response)
    assert page.problems == []
    assert page.html_lang == "en"
    assert page.title.strip().endswith("Identity provider")
    assert page.stylesheets == ["/static/idp/idp.css"]
    assert page.h1_count == 1
    for field in page.fields:
        labelled = field.get("id") in page.label_targets or field.get("aria-label") or field.get("aria-labelledby")
        assert labelled, f"unlabelled {field}"
    for form in page.forms:
        if form["method"] == "post":
            assert form["has_csrf"], "a POST form without a CSRF token"


@pytest.fixture
def browser(alice):
    client = BrowserClient(raise_request_exception=False)
    client.force_login(alice)
    return client


@pytest.fixture
def anonymous(db):
    return BrowserClient(raise_request_exception=False)


def test_the_sign_in_and_password_reset_pages_are_well_formed(anonymous, alice):
    for path in ("/login/", "/password-reset/", "/logout/"):
        response = anonymous.get(path)
        assert response.status_code == 200, path
        assert_well_formed_page(response)
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    reset = anonymous.get(f"/reset/{uid}/{default_token_generator.make_token(alice)}/", follow=True)
    assert reset.status_code == 200
    assert_well_formed_page(reset)


def test_the_account_password_and_logout_pages_are_well_formed(browser):
    for path in ("/account/", "/account/password/", "/logout/"):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert_well_formed_page(response)


def test_the_consent_page_and_its_error_page_are_well_formed(browser, db):
    issued = make_client()
    consent = browser.get(authorize_url(issued, scope="openid email orders:read"))
    assert consent.status_code == 200
    assert_well_formed_page(consent)
    error = browser.get(authorize_url(issued).replace(issued.client.client_id, "unknown"))
    assert error.status_code == 400
    assert_well_formed_page(error)


def test_the_rp_initiated_logout_pages_are_well_formed(browser):
    signing_key_ensure()
    issued = make_client(skip_consent=True)
    code = redirect_query(browser.get(authorize_url(issued, scope="openid")))["code"][0]
    id_token = exchange_code(browser, issued, code)["id_token"]
    confirm = browser.get("/o/logout/", {"id_token_hint": id_token,
                                         "post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI})
    assert confirm.status_code == 200
    assert_well_formed_page(confirm)
    error = browser.get("/o/logout/", {"id_token_hint": "not-a-token"})
    assert error.status_code == 400
    assert_well_formed_page(error)


@pytest.mark.urls(ERROR_URLS)
@pytest.mark.parametrize(("path", "status", "heading"), [
    ("/no-such-page/", 404, "This page doesn’t exist"),
    ("/test-errors/forbidden/", 403, "You don’t have access to this page"),
    ("/test-errors/broken/", 500, "Something went wrong on our side"),
])
def test_error_pages_are_helpful_well_formed_and_leak_nothing(anonymous, path, status, heading):
    response = anonymous.get(path)
    assert response.status_code == status
    html = response.content.decode()
    assert heading in html
    assert "internal detail" not in html and "Traceback" not in html and "no-such-page" not in html
    assert_well_formed_page(response)


def test_a_request_for_a_foreign_host_gets_the_400_page(anonymous):
    response = anonymous.get("/login/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    html = response.content.decode()
    assert "This request could not be understood" in html and "evil.example.com" not in html
    assert_well_formed_page(response)


def test_a_form_without_its_csrf_token_gets_the_friendly_403_page(db):
    response = BrowserClient(enforce_csrf_checks=True).post("/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form can’t be accepted" in html
    assert "make sure your browser allows" in html
    assert "CSRF cookie not set" not in html  # Django's internal reason is not shown
    assert_well_formed_page(response)
