"""The issuer's metadata (OpenID Connect Discovery 1.0 / RFC 8414), fetched once and cached for its lifetime."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from idp_resource_server.http import FetchError, get_json, require_safe_url

DISCOVERY_PATH = "/.well-known/openid-configuration"


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class ProviderMetadata:
    """The discovery document of one issuer, re-read when its Cache-Control lifetime (clamped) has passed.

    A failed re-read keeps the previous document: the endpoints of an issuer practically never move, and a brief
    outage of the IdP must not take every resource server down with it.
    """

    def __init__(
        self,
        issuer: str,
        *,
        timeout: float = 5.0,
        min_ttl: float = 60,
        max_ttl: float = 86400,
        default_ttl: float = 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = require_safe_url(issuer, what="issuer")
        # OpenID Connect Discovery §4: the document lives under the issuer, with any trailing slash removed.
        self.url = issuer.rstrip("/") + DISCOVERY_PATH
        self._timeout, self._min_ttl, self._max_ttl, self._default_ttl = timeout, min_ttl, max_ttl, default_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._document: dict | None = None
        self._expires_at = 0.0

    def document(self) -> dict:
        """The current metadata; raises FetchError only when it has never been fetched and cannot be now."""
        with self._lock:
            if self._document is not None and self._clock() < self._expires_at:
                return self._document
            try:
                response = get_json(self.url, timeout=self._timeout)
                document = self._checked(response.document)
            except FetchError:
                if self._document is None:
                    raise
                self._expires_at = self._clock() + self._min_ttl
                return self._document
            lifetime = self._default_ttl if response.max_age is None else response.max_age
            self._document = document
            self._expires_at = self._clock() + _clamp(lifetime, self._min_ttl, self._max_ttl)
            return document

    def endpoint(self, name: str) -> str:
        """An endpoint URL from the metadata (for example `jwks_uri` or `token_endpoint`), checked to be https."""
        url = self.document().get(name)
        if not isinstance(url, str):
            raise FetchError(f"{self.url}: the metadata has no {name}.")
        try:
            return require_safe_url(url, what=name)
        except ValueError as error:
            raise FetchError(str(error)) from None

    def _checked(self, document: dict) -> dict:
        # OpenID Connect Discovery §4.3 / RFC 8414 §3.3: the issuer in the document MUST be identical to the one
        # asked for, or an attacker who controls the document could make us trust another issuer's keys.
        if document.get("issuer") != self.issuer:
            raise FetchError(f"{self.url}: the metadata names issuer {document.get('issuer')!r}, not {self.issuer!r}.")
        return document
