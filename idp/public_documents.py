"""The discovery metadata and the JWKS answered from memory, in front of Django's request handling.

Both documents are the same bytes for every caller and are fetched far more often than anything else (every
resource server, gateway and relying party reads them), so each worker keeps the whole response Django produced for
them (status, every header, body) and replays it. Django still renders each one the first time, and again whenever
what it depends on changes, so the headers (CSP, nosniff, Cache-Control, CORS) and the body are exactly what the
views give:
- the discovery metadata depends only on settings, fixed for the life of the process;
- the JWKS depends on the published keys: a copy is replayed only while the key cache's snapshot it was rendered
  from is still the current one (idp/keys.py), so it follows a rotation exactly as the view itself would.
Anything unusual (another method, a query string, a Host outside ALLOWED_HOSTS, a non-200 answer) goes to Django.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from audit import metrics
from idp.keys import published_keys_version

_SETTINGS_ONLY = object()  # the version of a document that depends on nothing but settings


def _settings_version() -> object:
    return _SETTINGS_ONLY


# Path -> what the document depends on. The metrics route is the URL pattern, as audit/middleware.py labels it.
DOCUMENTS: dict[str, Callable[[], object | None]] = {
    "/.well-known/openid-configuration": _settings_version,
    "/.well-known/oauth-authorization-server": _settings_version,
    "/.well-known/jwks.json": published_keys_version,
}
_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class _Copy:
    version: object
    status: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _host_allowed(environ: dict) -> bool:
    # Django's own test against ALLOWED_HOSTS: a foreign Host header goes to Django for its 400, never a replay.
    # Which header names the host is HttpRequest._get_raw_host()'s choice.
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        host = environ["HTTP_X_FORWARDED_HOST"]
    else:
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def _is_secure(environ: dict) -> bool:
    # As HttpRequest.is_secure() decides it: HSTS is added to https answers only, so the two get separate copies.
    header = settings.SECURE_PROXY_SSL_HEADER
    if header:
        name, secure_value = header
        forwarded = environ.get(name)
        if forwarded is not None:
            return forwarded.split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


class PublicDocuments:
    """WSGI middleware: replays the last 200 answer Django gave for a public document while it is still current."""

    def __init__(self, application: Callable) -> None:
        self.application = application
        self._copies: dict[tuple[str, str, bool], _Copy] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        version_of = DOCUMENTS.get(path)
        method = environ.get("REQUEST_METHOD", "")
        if version_of is None or method not in _METHODS or environ.get("QUERY_STRING") or not _host_allowed(environ):
            return self.application(environ, start_response)
        started = time.perf_counter()
        key = (path, method, _is_secure(environ))
        version = version_of()
        copy = self._copies.get(key)
        if copy is None or version is None or copy.version is not version:
            return self._render(environ, start_response, key, version, version_of)
        start_response(copy.status, list(copy.headers))
        metrics.request_observe(route=path, method=method, status=200, seconds=time.perf_counter() - started)
        return [copy.body]

    def _render(self, environ: dict, start_response: Callable, key: tuple[str, str, bool], before: object | None,
                version_of: Callable[[], object | None]) -> Iterable[bytes]:
        answer: dict = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info=None):
            answer.update(status=status, headers=tuple(headers))
            return start_response(status, headers, exc_info)

        chunks = self.application(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # fires request_finished: Django returns its database connection
        # Kept only when nothing it depends on changed while it was rendered; a key re-listing during the render
        # (the version was stale before it) means the next request renders once more and keeps that one.
        if answer.get("status", "").startswith("200 ") and before is not None and version_of() is before:
            self._copies[key] = _Copy(version=before, status=answer["status"], headers=answer["headers"], body=body)
        return [body]
