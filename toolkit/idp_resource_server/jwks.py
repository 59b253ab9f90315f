"""The issuer's signing keys: fetched from the JWKS its discovery document names, parsed once, cached, thread-safe.

Steady state makes no network call: keys live as long as the JWKS response's Cache-Control allows (clamped to a
floor and a ceiling). An unknown `kid` triggers one refetch at most once per `min_refetch_interval`, so a key the
IdP has just started publishing is picked up, and a stream of tokens with made-up `kid`s cannot make us hammer the
IdP. When the IdP cannot be reached, the keys already cached keep serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import PyJWKError

from idp_resource_server.discovery import ProviderMetadata
from idp_resource_server.errors import REASON_UNKNOWN_KEY, InvalidToken, KeysUnavailable
from idp_resource_server.http import FetchError, get_json, require_safe_url

logger = logging.getLogger("idp_resource_server")

# RFC 8725 §3.1 / RFC 9068 §4: only asymmetric algorithms, each tied to the key type (and curve) that can carry it.
# `none` and HS* are never here: a verifier that accepts them lets anyone who knows the public key sign tokens.
ALGORITHMS_FOR_KEY = {
    ("RSA", None): frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    ("EC", "P-256"): frozenset({"ES256"}),
    ("EC", "P-384"): frozenset({"ES384"}),
    ("EC", "P-521"): frozenset({"ES512"}),
    ("OKP", "Ed25519"): frozenset({"EdDSA"}),
    ("OKP", "Ed448"): frozenset({"EdDSA"}),
}
# The algorithm a key is used with when its JWK has no `alg` member (RFC 7517 §4.4 makes `alg` optional).
DEFAULT_ALGORITHM = {("RSA", None): "RS256", ("EC", "P-256"): "ES256", ("EC", "P-384"): "ES384",
                     ("EC", "P-521"): "ES512", ("OKP", "Ed25519"): "EdDSA", ("OKP", "Ed448"): "EdDSA"}
MINIMUM_RSA_BITS = 2048  # RFC 7518 §3.3


@dataclass(frozen=True)
class VerificationKey:
    """One published key, parsed once into a PyJWT key object, with the single algorithm it verifies."""

    kid: str
    algorithm: str
    key: Any

    def __repr__(self) -> str:
        return f"VerificationKey(kid={self.kid!r}, algorithm={self.algorithm!r})"


def _key_class(jwk: Mapping[str, Any]) -> tuple[str, str | None] | None:
    kty = jwk.get("kty")
    curve = jwk.get("crv") if kty in ("EC", "OKP") else None
    key_class = (kty, curve)
    return key_class if key_class in ALGORITHMS_FOR_KEY else None


def verification_key(jwk: Mapping[str, Any]) -> VerificationKey | None:
    """The JWK as a VerificationKey, or None when it is not a public signature key we may use.

    The algorithm comes from the key (its `alg`, which must suit its type, or the type's default), never from a
    token's header (RFC 8725 §3.1).
    """
    kid = jwk.get("kid")
    key_class = _key_class(jwk)
    if not isinstance(kid, str) or not kid or key_class is None:
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    if "d" in jwk or "p" in jwk or "k" in jwk:
        return None  # a private or symmetric key has no business in a public JWKS; refuse to use it at all
    algorithm = jwk.get("alg", DEFAULT_ALGORITHM[key_class])
    if algorithm not in ALGORITHMS_FOR_KEY[key_class]:
        return None
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=algorithm).key
    except (PyJWKError, ValueError, TypeError, KeyError):
        return None
    if key_class[0] == "RSA" and key.key_size < MINIMUM_RSA_BITS:
        return None
    return VerificationKey(kid=kid, algorithm=algorithm, key=key)


def parse_jwks(document: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """The usable keys of a JWK Set (RFC 7517 §5) by `kid`; unusable or duplicate-`kid` keys are skipped."""
    keys: dict[str, VerificationKey] = {}
    members = document.get("keys")
    if not isinstance(members, list):
        raise FetchError("The JWK Set has no `keys` array.")
    duplicates: set[str] = set()
    for member in members:
        parsed = verification_key(member) if isinstance(member, dict) else None
        if parsed is None:
            logger.info("Skipping a JWK that is not a usable public signature key (kid %r).",
                        member.get("kid") if isinstance(member, dict) else None)
            continue
        if parsed.kid in keys:
            duplicates.add(parsed.kid)
        keys[parsed.kid] = parsed
    for kid in duplicates:
        # Two keys under one kid: we cannot know which one the issuer means, so we trust neither.
        logger.warning("The JWK Set publishes kid %r twice; neither key is used.", kid)
        del keys[kid]
    return keys


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class JwksCache:
    """The issuer's verification keys by `kid`, shared by every thread of the process.

    `issuer` is used for discovery (its `jwks_uri`), unless `jwks_uri` is given. Lifetimes are in seconds:
    `min_ttl`/`max_ttl` clamp the JWKS response's Cache-Control max-age, `default_ttl` applies when it has none,
    and `min_refetch_interval` is the least time between two fetches that were not due to expiry (an unknown kid,
    a retry after a failure).
    """

    def __init__(
        self,
        issuer: str | None = None,
        *,
        jwks_uri: str | None = None,
        min_ttl: float = 60,
        max_ttl: float = 86400,
        default_ttl: float = 300,
        min_refetch_interval: float = 10,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if jwks_uri is None and issuer is None:
            raise ValueError("Give the issuer (for discovery) or the jwks_uri.")
        if not 0 < min_ttl <= max_ttl:
            raise ValueError("min_ttl must be positive and no larger than max_ttl.")
        self._jwks_uri = require_safe_url(jwks_uri, what="jwks_uri") if jwks_uri else None
        self._metadata = None if jwks_uri else ProviderMetadata(issuer, timeout=timeout, min_ttl=min_ttl,
                                                                max_ttl=max_ttl, clock=clock)
        self._min_ttl, self._max_ttl, self._default_ttl = min_ttl, max_ttl, default_ttl
        self._min_refetch_interval = min_refetch_interval
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, VerificationKey] | None = None
        self._expires_at = 0.0
        self._last_attempt: float | None = None

    def key(self, kid: str) -> VerificationKey:
        """The key published under `kid`. Raises InvalidToken(unknown_key) for a kid the issuer does not publish,
        KeysUnavailable when no key set has ever been fetched and none can be fetched now."""
        keys = self._keys
        if keys is None or self._clock() >= self._expires_at:
            keys = self._refresh_expired(stale=keys)
        found = keys.get(kid)
        if found is None:
            found = self._refetch_for(kid).get(kid)
        if found is None:
            raise InvalidToken(REASON_UNKNOWN_KEY, "The access token is signed with a key this issuer does not use.")
        return found

    def _refresh_expired(self, *, stale: dict[str, VerificationKey] | None) -> dict[str, VerificationKey]:
        # With stale keys in hand, a thread that finds another one already fetching goes on with the stale set
        # instead of queueing behind the network call.
        if not self._lock.acquire(blocking=stale is None):
            return stale
        try:
            if self._keys is not None and self._clock() < self._expires_at:
                return self._keys  # another thread refreshed while this one waited
            if self._keys is None and not self._may_fetch_now():
                raise KeysUnavailable()
            return self._fetch()
        finally:
            self._lock.release()

    def _refetch_for(self, kid: str) -> dict[str, VerificationKey]:
        with self._lock:
            if kid in self._keys or not self._may_fetch_now():
                return self._keys
            logger.info("Unknown kid %r: refetching the JWK Set.", kid)
            return self._fetch()

    def _may_fetch_now(self) -> bool:
        return self._last_attempt is None or self._clock() - self._last_attempt >= self._min_refetch_interval

    def _fetch(self) -> dict[str, VerificationKey]:
        """Fetch and install the key set; on failure keep the old one for `min_refetch_interval` more seconds."""
        now = self._last_attempt = self._clock()
        try:
            uri = self._jwks_uri or self._metadata.endpoint("jwks_uri")
            response = get_json(uri, timeout=self._timeout)
            keys = parse_jwks(response.document)
        except FetchError as error:
            if self._keys is None:
                logger.error("Cannot fetch the issuer's signing keys: %s", error)
                raise KeysUnavailable() from None
            logger.warning("Cannot refresh the issuer's signing keys, still using the cached ones: %s", error)
            self._expires_at = now + self._min_refetch_interval
            return self._keys
        lifetime = self._default_ttl if response.max_age is None else response.max_age
        self._keys = keys
        self._expires_at = now + _clamp(lifetime, self._min_ttl, self._max_ttl)
        return keys
