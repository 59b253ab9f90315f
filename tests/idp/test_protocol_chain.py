"""The token, revocation, introspection and userinfo endpoints served through the protocol middleware chain
(idp/protocol_chain.py), as gunicorn serves them through idp.wsgi.application."""

import base64
import io
import sys

import pytest
from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import Resolver404, URLResolver

from clients.services import client_create
from idp.keys import signing_key_ensure
from idp.protocol_chain import ProtocolHandler, ProtocolRouter, protocol_paths

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def handlers(db):
    """Django's full handler and the protocol handler, called in-process inside the test's transaction."""
    signing_key_ensure()
    # As Django's test client does: a request must not close the connection that holds the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield WSGIHandler(), ProtocolHandler()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def service(db):
    return client_create(name="Orders", client_type="confidential", grant_types=["client-credentials"],
                         allowed_scopes=["orders:read"], audiences=["https://orders.example.com"])


def call(application, path, *, method="POST", body=b"", host="127.0.0.1:8000", **headers):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "HTTP_HOST": host, "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": FORM,
        "wsgi.errors": sys.stderr, **headers,
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=status, headers=response_headers)

    chunks = application(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        chunks.close()
    return answer["status"], answer["headers"], body


def basic(created) -> str:
    return "Basic " + base64.b64encode(f"{created.client.client_id}:{created.client_secret}".encode()).decode()


def test_the_protocol_chain_serves_exactly_the_four_endpoints_programs_call():
    assert protocol_paths() == {"/o/token/", "/o/revoke/", "/o/introspect/", "/o/userinfo/"}


def test_the_protocol_chain_is_the_protocol_middleware_and_the_full_chain_keeps_its_own(handlers):
    full_before = list(settings.MIDDLEWARE)
    _, protocol = handlers
    protocol.load_middleware()
    assert settings.MIDDLEWARE == full_before
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in settings.PROTOCOL_MIDDLEWARE
    assert "django.middleware.csrf.CsrfViewMiddleware" not in settings.PROTOCOL_MIDDLEWARE


@pytest.mark.parametrize("path", ["/o/token/", "/o/revoke/", "/o/introspect/"])
def test_a_refusal_is_the_same_answer_through_either_chain(handlers, path):
    full, protocol = handlers
    body = b"grant_type=client_credentials&token=x"
    through_full = call(full, path, body=body, HTTP_AUTHORIZATION="Basic bm9ib2R5Om5vdGhpbmc=")
    through_protocol = call(protocol, path, body=body, HTTP_AUTHORIZATION="Basic bm9ib2R5Om5vdGhpbmc=")
    # Same status, body and headers, the security headers included. The one difference: the full chain adds
    # `Vary: Cookie` because the audit event looked for a signed-in user in the session; these answers do not
    # depend on cookies (and are never stored: Cache-Control: no-store).
    assert through_protocol[0] == through_full[0] == "401 Unauthorized"
    assert through_protocol[2] == through_full[2]
    full_headers = dict(through_full[1])
    assert full_headers.pop("Vary") == "Cookie"
    protocol_headers = dict(through_protocol[1])
    assert protocol_headers == full_headers
    assert protocol_headers["X-Frame-Options"] == "DENY"
    assert protocol_headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in protocol_headers


def test_a_token_through_the_gunicorn_application_sets_no_cookie_and_carries_the_security_headers(handlers, service):
    full, _ = handlers
    application = ProtocolRouter(full)
    status, headers, body = call(application, "/o/token/", body=b"grant_type=client_credentials",
                                 HTTP_AUTHORIZATION=basic(service))
    assert status == "200 OK", body
    names = [name for name, _ in headers]
    assert "Set-Cookie" not in names
    headers = dict(headers)
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in headers


def test_a_foreign_host_is_refused_by_the_protocol_chain_too(handlers, service):
    _, protocol = handlers
    status, _, _ = call(protocol, "/o/token/", body=b"grant_type=client_credentials", host="evil.example",
                        HTTP_AUTHORIZATION=basic(service))
    assert status == "400 Bad Request"


def test_a_browser_page_still_gets_the_full_chain(client):
    response = client.get("/login/")
    assert hasattr(response.wsgi_request, "session")
    token_response = client.post("/o/token/", {"grant_type": "client_credentials"})
    assert not hasattr(token_response.wsgi_request, "session")


def test_a_protocol_endpoint_is_resolved_once_and_each_request_gets_a_match_of_its_own(handlers, monkeypatch):
    _, protocol = handlers
    factory = RequestFactory()
    first_request, second_request = factory.post("/o/introspect/"), factory.post("/o/introspect/")
    first = protocol.resolve_request(first_request)

    def walked(*args, **kwargs):
        raise AssertionError("the URL patterns were walked again")

    monkeypatch.setattr(URLResolver, "resolve", walked)
    second = protocol.resolve_request(second_request)
    assert (first_request.resolver_match, second_request.resolver_match) == (first, second)
    assert (second.url_name, second.namespace, second.route) == ("introspect", "oauth2_provider", "o/introspect/")
    assert second.func is first.func
    # Separate objects and separate kwargs: what one request's middleware sets cannot reach another request.
    assert second is not first and second.kwargs is not first.kwargs
    second.kwargs["planted"] = True
    assert "planted" not in protocol.resolve_request(factory.post("/o/introspect/")).kwargs


def test_only_the_protocol_endpoints_are_kept_and_any_other_path_is_resolved_each_time(handlers, monkeypatch):
    _, protocol = handlers
    walks = []
    resolve = URLResolver.resolve
    monkeypatch.setattr(URLResolver, "resolve", lambda self, path: walks.append(path) or resolve(self, path))
    for _ in range(2):
        assert protocol.resolve_request(RequestFactory().get("/.well-known/jwks.json")).url_name == "jwks"
        with pytest.raises(Resolver404):
            protocol.resolve_request(RequestFactory().get("/o/introspect/made-up/"))
    # The root resolver sees the whole path (included URLconfs see the rest of it).
    assert [path for path in walks if path.startswith("/")] == ["/.well-known/jwks.json", "/o/introspect/made-up/"] * 2


def test_a_changed_urlconf_is_resolved_afresh(handlers, settings, monkeypatch):
    _, protocol = handlers
    assert protocol.resolve_request(RequestFactory().post("/o/token/")).url_name == "token"
    walks = []
    resolve = URLResolver.resolve
    monkeypatch.setattr(URLResolver, "resolve", lambda self, path: walks.append(path) or resolve(self, path))
    settings.ROOT_URLCONF = "tests.idp.error_urls"
    for _ in range(2):
        assert protocol.resolve_request(RequestFactory().post("/o/token/")).url_name == "token"
    assert [path for path in walks if path.startswith("/")] == ["/o/token/"]  # once for the new URLconf, then kept
    request = RequestFactory().post("/o/token/")
    request.urlconf = "tests.idp.no_such_urlconf"
    with pytest.raises(ModuleNotFoundError):
        protocol.resolve_request(request)  # a URLconf a middleware set for one request is always honoured
