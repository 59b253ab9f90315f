"""The endpoints programs call (token, revocation, introspection, userinfo), served by a Django handler whose
middleware chain leaves out what only browser pages use.

A request to these endpoints carries its own credentials (client authentication or a bearer token), never a
cookie: no session, CSRF token, signed-in user or flash message is read or written for it, and every one of these
views is exempt from CSRF (they are not reached from a form). The session, CSRF, authentication, session-activity,
messages and static-file middleware only cost them time, about a tenth of an introspection's. So the WSGI
application gunicorn serves (idp/wsgi.py) hands exactly these paths to a second Django handler built from
`settings.PROTOCOL_MIDDLEWARE`, which keeps what applies to them: request metrics, the security headers, the Host
check, and the access-denied audit. Every other path, and these ones spelled any other way (without the trailing
slash, say), goes through the full chain as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.urls import reverse

# The URL names of the endpoints served through the shorter chain (idp/urls.py, namespace oauth2_provider).
PROTOCOL_URL_NAMES = ("token", "revoke-token", "introspect", "user-info")


class ProtocolChainMixin:
    """For a Django handler class: its middleware chain is built from `settings.PROTOCOL_MIDDLEWARE`."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds a chain from settings.MIDDLEWARE only, so the list is swapped in for the one call that
        # builds this handler's chain: the chain is then exactly what Django would build from that list. It runs
        # once per handler; gunicorn's is built while idp.wsgi is imported, before any request is served.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.PROTOCOL_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class ProtocolHandler(ProtocolChainMixin, WSGIHandler):
    """Django's WSGI handler with `settings.PROTOCOL_MIDDLEWARE` as its middleware chain."""


def protocol_paths() -> frozenset[str]:
    """The PATH_INFO of every endpoint served through the shorter chain."""
    return frozenset(reverse(f"oauth2_provider:{name}") for name in PROTOCOL_URL_NAMES)


class ProtocolRouter:
    """WSGI: protocol endpoints to `protocol`, everything else to `full`."""

    def __init__(self, full: Callable) -> None:
        self.full = full
        self.protocol = ProtocolHandler()
        self.paths = protocol_paths()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        handler = self.protocol if environ.get("PATH_INFO") in self.paths else self.full
        return handler(environ, start_response)
