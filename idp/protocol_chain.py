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
from django.http import HttpRequest
from django.urls import ResolverMatch, URLResolver, get_resolver, reverse

# The URL names of the endpoints served through the shorter chain (idp/urls.py, namespace oauth2_provider).
PROTOCOL_URL_NAMES = ("token", "revoke-token", "introspect", "user-info")


class ProtocolChainMixin:
    """For a Django handler class: its middleware chain is built from `settings.PROTOCOL_MIDDLEWARE`, and each
    protocol endpoint's URL is resolved once."""

    # The URLconf's resolver, and the match of each protocol endpoint's path resolved with it.
    _resolved: tuple[URLResolver, dict[str, ResolverMatch]] | None = None

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

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        # A protocol endpoint is one fixed path without parameters, so its match is the same on every request, and
        # resolving it walked the URLconf's patterns each time, about a twentieth of an introspection's CPU. The
        # match is kept per resolver (a changed ROOT_URLCONF gets a new one) and only for these four endpoints, so
        # no path a client makes up is remembered. Each request gets its own copy with its own kwargs dict, which
        # process_view middleware may be handed.
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        resolver = get_resolver()
        resolved = self._resolved
        if resolved is None or resolved[0] is not resolver:
            resolved = self._resolved = (resolver, {})
        kept = resolved[1].get(request.path_info)
        if kept is None:
            match = super().resolve_request(request)
            if (match.namespace == "oauth2_provider" and match.url_name in PROTOCOL_URL_NAMES and not match.args
                    and not match.kwargs):
                resolved[1][request.path_info] = _own_copy(match)
            return match
        request.resolver_match = match = _own_copy(kept)
        return match


def _own_copy(match: ResolverMatch) -> ResolverMatch:
    """A copy of a match without arguments, with a kwargs dict of its own (ResolverMatch refuses copy.copy)."""
    own = ResolverMatch.__new__(ResolverMatch)
    own.__dict__.update(match.__dict__)
    own.kwargs = {}
    return own


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
