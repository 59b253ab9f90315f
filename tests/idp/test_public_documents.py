"""The discovery metadata and the JWKS replayed from memory in front of Django (idp/public_documents.py)."""

import io
import json
import sys

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.utils import timezone

from audit import metrics
from idp import keys
from idp.keys import next_key_lead_time, signing_key_ensure, signing_key_rotate
from idp.models import SigningKey
from idp.public_documents import PublicDocuments

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"


class CountingDjango:
    """Django's WSGI handler, counting the requests that reach it."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.handler(environ, start_response)


@pytest.fixture
def served(db):
    """The IdP's WSGI stack as gunicorn runs it, called in-process inside the test's transaction."""
    # As Django's test client does: a request must not close the connection that holds the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    django = CountingDjango()
    yield PublicDocuments(django), django
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def call(application, path, *, method="GET", host="127.0.0.1:8000", query="", **headers):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "HTTP_HOST": host, "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr, **headers,
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=status, headers=dict(response_headers))

    body = b"".join(application(environ, start_response))
    return answer["status"], answer["headers"], body


def test_a_replayed_document_is_byte_for_byte_what_django_answered(served):
    application, django = served
    signing_key_ensure()
    for path in (DISCOVERY, JWKS):
        rendered = call(application, path)
        calls = django.calls
        replayed = [call(application, path) for _ in range(3)]
        assert rendered[0] == "200 OK"
        assert replayed == [rendered] * 3
        assert rendered[1]["Content-Security-Policy"] and rendered[1]["X-Content-Type-Options"] == "nosniff"
        # The JWKS rendered right after a key change is kept from its second render on (see _render).
        assert django.calls - calls <= 1


def test_the_jwks_follows_a_rotation_in_this_process_at_once(served):
    application, django = served
    signing_key_ensure()
    before = json.loads(call(application, JWKS)[2])

    signing_key_rotate(now=timezone.now() + next_key_lead_time())

    after = json.loads(call(application, JWKS)[2])
    assert {jwk["kid"] for jwk in after["keys"]} == set(SigningKey.objects.values_list("kid", flat=True))
    assert after != before


def test_the_jwks_follows_another_process_rotation_when_the_key_cache_is_re_listed(served, monkeypatch, settings):
    application, django = served
    settings.IDP_KEY_CACHE_SECONDS = 30
    signing_key_ensure()
    call(application, JWKS)
    # Another process adds a key: this process's key cache learns of it at its next re-listing, and so does the copy.
    SigningKey.objects.filter(state=SigningKey.State.NEXT).delete()
    assert call(application, JWKS)[2] == call(application, JWKS)[2]
    clock = keys._monotonic()
    monkeypatch.setattr(keys, "_monotonic", lambda: clock + 31)

    published = json.loads(call(application, JWKS)[2])["keys"]

    assert len(published) == 1


@pytest.mark.parametrize(
    ("method", "query", "host"),
    [("POST", "", "127.0.0.1:8000"), ("GET", "x=1", "127.0.0.1:8000"), ("GET", "", "evil.example")],
)
def test_anything_unusual_goes_to_django_every_time(served, method, query, host):
    application, django = served
    call(application, DISCOVERY)
    statuses = {call(application, DISCOVERY, method=method, query=query, host=host)[0] for _ in range(2)}
    assert django.calls == 3  # the first GET, then both unusual requests
    if method == "POST":
        assert statuses == {"403 Forbidden"}  # Django's CSRF check answers first, as it always did
    elif host == "evil.example":
        assert statuses == {"400 Bad Request"}  # ALLOWED_HOSTS still applies


def test_a_document_that_is_not_200_is_never_replayed(served):
    application, django = served
    # Before bootstrap the JWKS is an empty set that must not be cached (idp/jwks.py); it is still a 200, but the
    # key snapshot it came from is stale as soon as a key is made, so the next answer carries the key.
    assert json.loads(call(application, JWKS)[2]) == {"keys": []}
    signing_key_ensure()
    assert len(json.loads(call(application, JWKS)[2])["keys"]) == 2


def test_replays_are_counted_in_the_request_metrics(served):
    application, _ = served
    labels = {"route": DISCOVERY, "method": "GET", "status": "2xx"}
    before = metrics.REQUESTS.labels(**labels)._value.get()
    for _ in range(3):
        call(application, DISCOVERY)
    assert metrics.REQUESTS.labels(**labels)._value.get() == before + 3


def test_behind_a_proxy_a_foreign_forwarded_host_goes_to_django(served, settings):
    application, django = served
    settings.USE_X_FORWARDED_HOST = True
    call(application, DISCOVERY)
    status = call(application, DISCOVERY, HTTP_X_FORWARDED_HOST="evil.example")[0]
    assert status == "400 Bad Request"
    assert django.calls == 2
