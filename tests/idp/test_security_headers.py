"""Security headers on every page type, through the whole middleware stack (tests/browser checks them in Chromium)."""

import pytest
from django.http import HttpResponse
from django.test import Client as BrowserClient
from django.test import RequestFactory

from idp.security_headers import CONTENT_SECURITY_POLICY, SecurityHeadersMiddleware
from tests.accounts.oauth_browser import authorize_url, make_client

ERROR_URLS = "tests.idp.error_urls"


@pytest.fixture
def browser(alice):
    client = BrowserClient(raise_request_exception=False)
    client.force_login(alice)
    return client


@pytest.fixture
def anonymous(db):
    return BrowserClient(raise_request_exception=False)


def _pages(browser, anonymous):
    """One response of every kind of page: (name, response)."""
    issued = make_client()
    yield "login", anonymous.get("/login/")
    yield "consent", browser.get(authorize_url(issued))
    yield "consent error", browser.get(authorize_url(issued).replace(issued.client.client_id, "unknown"))
    yield "logout", browser.get("/logout/")
    yield "rp-initiated logout error", browser.get("/o/logout/", {"id_token_hint": "not-a-token"})
    yield "account", browser.get("/account/")
    yield "admin login", anonymous.get("/admin/login/")
    yield "400", anonymous.get("/login/", HTTP_HOST="evil.example.com")
    yield "403", anonymous.get("/test-errors/forbidden/")
    yield "403 csrf", BrowserClient(enforce_csrf_checks=True).post("/login/", {"username": "a"})
    yield "404", anonymous.get("/no-such-page/")
    yield "500", anonymous.get("/test-errors/broken/")
    yield "discovery (json)", anonymous.get("/.well-known/openid-configuration")


@pytest.mark.urls(ERROR_URLS)
def test_every_page_type_carries_every_security_header(browser, anonymous):
    seen = []
    for name, response in _pages(browser, anonymous):
        seen.append((name, response.status_code))
        csp = response.headers["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert directives["script-src"] == "'self'", name
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, name
        assert directives["frame-ancestors"] == "'none'", name
        assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'", name
        assert "form-action" not in directives, name  # would block the redirect to a client after a form POST
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "same-origin", name
        for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
            assert f"{feature}=()" in response.headers["Permissions-Policy"], name
        assert "Strict-Transport-Security" not in response.headers, name  # plain http: HSTS means nothing
    assert [status for _, status in seen] == [200, 200, 400, 200, 400, 200, 200, 400, 403, 403, 404, 500, 200]


def test_consent_and_logout_pages_are_never_stored_by_caches(browser):
    issued = make_client()
    for response in (browser.get(authorize_url(issued)), browser.get("/logout/"),
                     browser.get("/o/logout/", {"id_token_hint": "not-a-token"})):
        assert "no-store" in response.headers["Cache-Control"]


def test_https_responses_carry_hsts_with_the_settings_of_an_https_issuer(anonymous, settings):
    # The values idp/settings.py chooses for an https issuer (tests/idp/test_settings.py checks that choice).
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    secure = anonymous.get("/login/", secure=True)
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "frame-ancestors 'none'" in secure.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in anonymous.get("/login/").headers


def test_a_view_with_a_stricter_policy_of_its_own_keeps_it():
    stricter = "default-src 'none'; frame-ancestors 'none'"

    def view(request):
        response = HttpResponse("{}", content_type="application/json")
        response.headers["Content-Security-Policy"] = stricter
        return response

    response = SecurityHeadersMiddleware(view)(RequestFactory().get("/"))
    assert response.headers["Content-Security-Policy"] == stricter
    assert "camera=()" in response.headers["Permissions-Policy"]
    plain = SecurityHeadersMiddleware(lambda request: HttpResponse("x"))(RequestFactory().get("/"))
    assert plain.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
