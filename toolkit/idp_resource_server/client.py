"""Calling other services: the service's own client-credentials token, cached, and RFC 8693 token exchange."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from idp_resource_server.discovery import ProviderMetadata
from idp_resource_server.http import FetchError, post_form, require_safe_url

GRANT_CLIENT_CREDENTIALS = "client_credentials"
# RFC 8693 §2.1 and §3.
GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE_ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


class TokenRequestError(Exception):
    """The token endpoint refused (RFC 6749 §5.2 `error`), or could not be reached (`error` is None)."""

    def __init__(self, error: str | None, description: str, *, status: int | None = None) -> None:
        super().__init__(f"{error or 'unavailable'}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class _CachedToken:
    access_token: str
    refresh_at: float


class TokenClient:
    """A confidential client of the issuer's token endpoint, authenticating with HTTP Basic (RFC 6749 §2.3.1).

    The token endpoint comes from the issuer's discovery document unless `token_endpoint` is given. Client-credentials
    tokens are cached per (audience, scope) until `refresh_margin` seconds before they expire (or half their life,
    when that is shorter), so a busy service asks the IdP about once per token lifetime.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        token_endpoint: str | None = None,
        refresh_margin: float = 30,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("A TokenClient needs the client_id and client_secret.")
        self.client_id = client_id
        self._secret = client_secret
        self._token_endpoint = require_safe_url(token_endpoint, what="token endpoint") if token_endpoint else None
        self._metadata = ProviderMetadata(issuer, timeout=timeout, clock=clock)
        self._refresh_margin = refresh_margin
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], _CachedToken] = {}

    def __repr__(self) -> str:
        return f"TokenClient(client_id={self.client_id!r})"  # never the secret

    def client_credentials_token(self, *, audience: str, scope: str = "") -> str:
        """An access token for this client itself at `audience` (RFC 6749 §4.4, RFC 8707 `resource`)."""
        key = (audience, scope)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.access_token
            data = {"grant_type": GRANT_CLIENT_CREDENTIALS, "resource": audience}
            if scope:
                data["scope"] = scope
            answer = self._request(data)
            lifetime = answer["expires_in"]
            margin = min(self._refresh_margin, lifetime / 2)
            self._cache[key] = _CachedToken(answer["access_token"], self._clock() + lifetime - margin)
            return answer["access_token"]

    def exchange(self, *, subject_token: str, audience: str, scope: str = "") -> str:
        """An access token for `audience` on behalf of the subject of `subject_token` (RFC 8693 §2.1).

        The IdP decides whether this client may exchange into that audience; a refusal raises TokenRequestError
        with its `error` (for example `unauthorized_client` or `invalid_target`).
        """
        data = {
            "grant_type": GRANT_TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": TOKEN_TYPE_ACCESS_TOKEN,
            "audience": audience,
        }
        if scope:
            data["scope"] = scope
        answer = self._request(data)
        # RFC 8693 §2.2.1: issued_token_type is REQUIRED; anything but an access token is of no use here.
        if answer.get("issued_token_type") != TOKEN_TYPE_ACCESS_TOKEN:
            raise TokenRequestError(None, "The token endpoint issued something other than an access token.")
        return answer["access_token"]

    def _endpoint(self) -> str:
        if self._token_endpoint:
            return self._token_endpoint
        try:
            return self._metadata.endpoint("token_endpoint")
        except FetchError as error:
            raise TokenRequestError(None, str(error)) from None

    def _request(self, data: dict[str, str]) -> dict:
        try:
            response = post_form(self._endpoint(), data=data, basic_auth=(self.client_id, self._secret),
                                 timeout=self._timeout)
        except FetchError as error:
            raise TokenRequestError(None, str(error)) from None
        answer = response.document
        if response.status != 200:
            error = answer.get("error")
            raise TokenRequestError(
                error if isinstance(error, str) else None, str(answer.get("error_description", "")),
                status=response.status,
            )
        # RFC 6749 §5.1: a Bearer token (the type is case-insensitive) with its lifetime.
        if (not isinstance(answer.get("access_token"), str) or str(answer.get("token_type", "")).lower() != "bearer"
                or not isinstance(answer.get("expires_in"), int) or answer["expires_in"] <= 0):
            raise TokenRequestError(None, "The token endpoint's answer is not a Bearer token with a lifetime.")
        return answer
