"""Signing keys: services that create and rotate them, selectors that read them through a per-process cache."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from jwcrypto.jwk import JWK

from audit import events
from audit.services import event_record
from idp.models import SigningKey

logger = logging.getLogger(__name__)

RSA_PUBLIC_EXPONENT = 65537  # RFC 8017 §3.1 / NIST SP 800-56B: the only exponent worth using
MINIMUM_RSA_KEY_BITS = 2048  # RFC 7518 §3.3

# JWKS order: the signing key first, then the one that signs next, then retired ones (newest first).
_STATE_ORDER = {SigningKey.State.ACTIVE: 0, SigningKey.State.NEXT: 1, SigningKey.State.RETIRED: 2}


class NoActiveSigningKey(ImproperlyConfigured):
    """No signing key is active, so no token can be signed."""

    def __init__(self) -> None:
        super().__init__(
            "No active signing key: tokens cannot be signed. Run `python manage.py bootstrap` (first run) or "
            "`python manage.py keys rotate` to create and activate one."
        )


class SigningKeyUnreadable(ImproperlyConfigured):
    """A stored private key cannot be decrypted or does not match its key id."""


@dataclass(frozen=True)
class LoadedKey:
    """A signing key decrypted and parsed once per process; `public_jwk` is read-only."""

    kid: str
    algorithm: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey = field(repr=False, compare=False)
    public_jwk: MappingProxyType = field(repr=False, compare=False)
    state: str

    @cached_property
    def jwk(self) -> JWK:
        """The private key as a jwcrypto JWK (for django-oauth-toolkit's `jwk_key`), built once per process.

        Build it here rather than per request: jwcrypto re-creates and re-validates the RSA key from its numbers
        the first time a new JWK object signs, which costs tens of milliseconds.
        """
        return JWK.from_pyca(self.private_key)


@dataclass(frozen=True)
class RotationResult:
    """What one `signing_key_rotate` run did: public key ids and the times that matter, never key material."""

    promoted: str | None = None  # the key that became active
    retired: str | None = None  # the previously active key, still published until `retired_until`
    retired_until: datetime | None = None
    created_next: str | None = None  # the fresh next key: published now, signing from a later rotation
    removed: tuple[str, ...] = ()  # retired keys deleted because every token they signed has expired
    # Set when the next key was published too recently to sign: the time from which a rotation will promote it.
    deferred_until: datetime | None = None


# --- Lifetimes that make rotation safe. -----------------------------------------------------------------------


def next_key_lead_time() -> timedelta:
    """How long a `next` key is published before it may sign.

    Every IdP process sees a new key within IDP_KEY_CACHE_SECONDS, and a resource server that fetched the JWKS
    just before then refreshes its copy within IDP_JWKS_MAX_AGE; after that, every verifier knows the key.
    """
    return timedelta(seconds=settings.IDP_KEY_CACHE_SECONDS + settings.IDP_JWKS_MAX_AGE)


def retired_key_retention() -> timedelta:
    """How long a retired key stays published: until every token it can have signed has expired everywhere.

    Other processes may keep signing with it for IDP_KEY_CACHE_SECONDS after it was retired; a token lives at most
    the longest token lifetime; verifiers accept it for IDP_CLOCK_LEEWAY more; and a margin of IDP_JWKS_MAX_AGE
    lets cached JWKS copies refresh.
    """
    provider = settings.OAUTH2_PROVIDER
    longest_token = max(
        settings.IDP_ACCESS_TOKEN_MAX_LIFETIME,
        settings.IDP_ID_TOKEN_LIFETIME,
        provider.get("ACCESS_TOKEN_EXPIRE_SECONDS", 0),
        provider.get("ID_TOKEN_EXPIRE_SECONDS", 0),
    )
    return timedelta(
        seconds=settings.IDP_KEY_CACHE_SECONDS + longest_token + settings.IDP_CLOCK_LEEWAY + settings.IDP_JWKS_MAX_AGE
    )


# --- Key material. --------------------------------------------------------------------------------------------


def _fernet() -> Fernet:
    return Fernet(settings.IDP_KEY_ENCRYPTION_KEY)


def _generate_private_key(algorithm: str) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, int]:
    if algorithm == SigningKey.Algorithm.RS256:
        bits = settings.IDP_RSA_KEY_BITS
        if bits < MINIMUM_RSA_KEY_BITS:
            raise ImproperlyConfigured(f"IDP_RSA_KEY_BITS must be at least {MINIMUM_RSA_KEY_BITS} (RFC 7518 §3.3).")
        return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=bits), bits
    if algorithm == SigningKey.Algorithm.ES256:
        return ec.generate_private_key(ec.SECP256R1()), 256  # RFC 7518 §3.4: ES256 is ECDSA on P-256
    raise ImproperlyConfigured(f"Unsupported signing algorithm {algorithm!r}: use RS256 or ES256 (RFC 9068 §2.1).")


def _public_jwk(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, algorithm: str) -> dict[str, Any]:
    """The public JWK (RFC 7517 §4) with `kid` set to the RFC 7638 SHA-256 thumbprint of the key."""
    exported = JWK.from_pyca(public_key)
    members = exported.export_public(as_dict=True)
    members.pop("kid", None)
    return {"kty": members.pop("kty"), "use": "sig", "alg": algorithm, "kid": exported.thumbprint(), **members}


def _matches_algorithm(private_key: Any, algorithm: str) -> bool:
    if algorithm == SigningKey.Algorithm.RS256:
        return isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size >= MINIMUM_RSA_KEY_BITS
    if algorithm == SigningKey.Algorithm.ES256:
        return isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(private_key.curve, ec.SECP256R1)
    return False


def _load_private_key(*, kid: str, algorithm: str, state: str, encrypted: bytes) -> LoadedKey:
    """Decrypt and parse one stored key, checking it is the key its kid names. The costly step the cache avoids."""
    try:
        pem = _fernet().decrypt(bytes(encrypted))
    except InvalidToken:
        raise SigningKeyUnreadable(
            f"Signing key {kid} cannot be decrypted: IDP_KEY_ENCRYPTION_KEY is not the key it was encrypted with. "
            "Set IDP_KEY_ENCRYPTION_KEY back to the value this database was set up with."
        ) from None
    private_key = serialization.load_pem_private_key(pem, password=None)
    public_key = private_key.public_key()
    public_jwk = _public_jwk(public_key, algorithm)
    if public_jwk["kid"] != kid or not _matches_algorithm(private_key, algorithm):
        raise SigningKeyUnreadable(
            f"Signing key {kid} holds a private key that does not match its key id or algorithm {algorithm}; "
            "the row was altered or copied from another key. Restore it from a backup or delete it."
        )
    return LoadedKey(
        kid=kid,
        algorithm=algorithm,
        private_key=private_key,
        public_key=public_key,
        public_jwk=MappingProxyType(public_jwk),
        state=state,
    )


# --- The per-process cache. -----------------------------------------------------------------------------------

_monotonic = time.monotonic


@dataclass(frozen=True)
class _KeySet:
    keys: tuple[LoadedKey, ...]
    by_kid: MappingProxyType
    active: LoadedKey | None
    expires_at: float


class _KeyCache:
    """The published keys, parsed once per process and re-listed at most every IDP_KEY_CACHE_SECONDS.

    Readers take the current snapshot without locking; one thread at a time refreshes it with a single query
    (kid and state of every key), fetching and parsing only keys this process has not seen before.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key_set: _KeySet | None = None
        self._loaded: dict[str, LoadedKey] = {}  # by kid; guarded by _lock

    def key_set(self) -> _KeySet:
        key_set = self._key_set
        if key_set is not None and _monotonic() < key_set.expires_at:
            return key_set
        with self._lock:
            key_set = self._key_set
            if key_set is None or _monotonic() >= key_set.expires_at:
                key_set = self._refresh()
                self._key_set = key_set
            return key_set

    def expire(self) -> None:
        """Re-list the keys at the next read; parsed keys stay, since a kid (a thumbprint) names one key forever."""
        with self._lock:
            self._key_set = None

    def reset(self) -> None:
        with self._lock:
            self._key_set = None
            self._loaded.clear()

    def _refresh(self) -> _KeySet:
        listed = list(SigningKey.objects.order_by("-created", "-id").values_list("kid", "state"))
        states = dict(listed)
        unseen = [kid for kid in states if kid not in self._loaded]
        if unseen:
            rows = SigningKey.objects.filter(kid__in=unseen).values_list("kid", "algorithm", "private_key_encrypted")
            for kid, algorithm, encrypted in rows:
                self._loaded[kid] = _load_private_key(
                    kid=kid, algorithm=algorithm, state=states[kid], encrypted=encrypted
                )
        for kid in [kid for kid in self._loaded if kid not in states]:
            del self._loaded[kid]

        keys = []
        for kid, state in listed:
            loaded = self._loaded.get(kid)
            if loaded is None:  # deleted between the two queries
                continue
            if loaded.state != state:
                loaded = self._loaded[kid] = replace(loaded, state=state)
            keys.append(loaded)
        keys.sort(key=lambda key: _STATE_ORDER[key.state])
        active = next((key for key in keys if key.state == SigningKey.State.ACTIVE), None)
        return _KeySet(
            keys=tuple(keys),
            by_kid=MappingProxyType({key.kid: key for key in keys}),
            active=active,
            expires_at=_monotonic() + settings.IDP_KEY_CACHE_SECONDS,
        )


_cache = _KeyCache()


def reset_key_cache() -> None:
    """Forget every cached key in this process (tests, a changed IDP_KEY_ENCRYPTION_KEY); the next read parses again."""
    _cache.reset()


def _expire_key_cache_now_and_on_commit() -> None:
    # Now, so this process stops using what it just changed; and again on commit, in case an enclosing
    # transaction was still open and another thread re-read the old rows in the meantime.
    _cache.expire()
    transaction.on_commit(_cache.expire)


# --- Selectors. -----------------------------------------------------------------------------------------------


def active_signing_key() -> LoadedKey:
    """The key that signs tokens now; raises NoActiveSigningKey when there is none. No query in steady state."""
    active = _cache.key_set().active
    if active is None:
        raise NoActiveSigningKey()
    return active


def published_signing_keys() -> list[LoadedKey]:
    """Every key a verifier may meet: active first, then next, then retired keys not yet removed."""
    return list(_cache.key_set().keys)


def signing_key_by_kid(kid: str) -> LoadedKey | None:
    """The published key with this kid, or None. An unknown kid never triggers a query."""
    return _cache.key_set().by_kid.get(kid)


def published_keys_version() -> object | None:
    """The current snapshot of the published keys while it is fresh, else None; never queries. A new object each time
    the keys are re-listed, so whatever was built from one snapshot is current exactly while it `is` this."""
    key_set = _cache._key_set
    return key_set if key_set is not None and _monotonic() < key_set.expires_at else None


def jwks_document() -> dict[str, list[dict[str, Any]]]:
    """The JWK Set (RFC 7517 §5) of the published public keys; a fresh dict the caller may change."""
    return {"keys": [dict(key.public_jwk) for key in _cache.key_set().keys]}


def signing_key_list() -> list[SigningKey]:
    """Every stored key, newest first, for operators; the encrypted private key is not even read."""
    return list(SigningKey.objects.defer("private_key_encrypted"))


# --- Services. ------------------------------------------------------------------------------------------------


def _insert(*, state: str, algorithm: str | None, now: datetime) -> SigningKey:
    algorithm = algorithm or settings.IDP_SIGNING_ALGORITHM
    private_key, key_size = _generate_private_key(algorithm)
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_jwk = _public_jwk(private_key.public_key(), algorithm)
    key = SigningKey.objects.create(
        kid=public_jwk["kid"],
        algorithm=algorithm,
        key_size=key_size,
        state=state,
        private_key_encrypted=_fernet().encrypt(pem),
        public_jwk=public_jwk,
        created=now,
        activated_at=now if state == SigningKey.State.ACTIVE else None,
    )
    logger.info("Created %s signing key %s in state %s.", algorithm, key.kid, state)
    return key


def signing_key_create(*, state: str, algorithm: str | None = None, now: datetime | None = None) -> SigningKey:
    """Generate a key pair and store it in the `next` or `active` state, encrypted with IDP_KEY_ENCRYPTION_KEY.

    `algorithm` defaults to IDP_SIGNING_ALGORITHM. Raises IntegrityError when a key already holds that state;
    prefer `signing_key_ensure` and `signing_key_rotate`, which keep the states consistent.
    """
    if state not in (SigningKey.State.NEXT, SigningKey.State.ACTIVE):
        raise ValueError("A signing key is created as next or active; it becomes retired only by rotation.")
    with transaction.atomic():
        key = _insert(state=state, algorithm=algorithm, now=now or timezone.now())
    _expire_key_cache_now_and_on_commit()
    return key


def _lock_keys() -> dict[str, list[SigningKey]]:
    # Lock every key row first, so a concurrent rotation waits here until the other one has committed; then read
    # again, because on PostgreSQL the locking statement does not see rows the other rotation inserted.
    list(SigningKey.objects.select_for_update().order_by("id").values_list("id", flat=True))
    by_state: dict[str, list[SigningKey]] = {state: [] for state in SigningKey.State.values}
    for key in SigningKey.objects.select_for_update().order_by("id").defer("private_key_encrypted"):
        by_state[key.state].append(key)
    return by_state


def _promote(*, next_key: SigningKey, active: SigningKey | None, now: datetime) -> None:
    # Retire first: the database allows one active key at any moment.
    if active is not None:
        active.state = SigningKey.State.RETIRED
        active.retired_at = now
        active.save(update_fields=["state", "retired_at"])
        logger.info("Retired signing key %s.", active.kid)
    next_key.state = SigningKey.State.ACTIVE
    next_key.activated_at = now
    next_key.save(update_fields=["state", "activated_at"])
    logger.info("Promoted signing key %s to active.", next_key.kid)


def signing_key_ensure() -> bool:
    """Make sure a key is active and a next key is published; returns whether anything was created.

    Used at first-run set-up. When no key is active, the next key (created here if missing) is promoted at once:
    nothing can be signed until one is, so there is no older verifier cache to wait for.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            keys = _lock_keys()
            active = keys[SigningKey.State.ACTIVE][0] if keys[SigningKey.State.ACTIVE] else None
            next_key = keys[SigningKey.State.NEXT][0] if keys[SigningKey.State.NEXT] else None
            if active is not None and next_key is not None:
                return False
            if active is None:
                if next_key is None:
                    next_key = _insert(state=SigningKey.State.NEXT, algorithm=None, now=now)
                _promote(next_key=next_key, active=None, now=now)
            _insert(state=SigningKey.State.NEXT, algorithm=None, now=now)
    except IntegrityError:
        # Another process ran the same set-up at the same moment and committed first; its keys serve.
        logger.info("Signing keys were created concurrently by another process.")
        _cache.expire()
        return False
    _expire_key_cache_now_and_on_commit()
    return True


def signing_key_rotate(*, now: datetime | None = None, request: HttpRequest | None = None) -> RotationResult:
    """Promote next -> active -> retired, publish a fresh next key, and remove retired keys nobody can need.

    Safe to run on any schedule, as often as you like: the next key is promoted only after it has been published
    for `next_key_lead_time()` (otherwise the run is deferred and says until when), and a retired key is removed
    only after `retired_key_retention()`, when every token it signed has expired. With no active key at all, the
    next key is promoted at once. Records key.rotated (key ids and their new states; `request` names the admin who
    asked, None from the CLI).
    """
    now = now or timezone.now()
    promoted = retired = retired_until = deferred_until = created_next = None
    with transaction.atomic():
        keys = _lock_keys()
        active = keys[SigningKey.State.ACTIVE][0] if keys[SigningKey.State.ACTIVE] else None
        next_key = keys[SigningKey.State.NEXT][0] if keys[SigningKey.State.NEXT] else None
        if next_key is None:
            next_key = _insert(state=SigningKey.State.NEXT, algorithm=None, now=now)
            created_next = next_key.kid
        promotable_at = next_key.created + next_key_lead_time()
        if active is None or promotable_at <= now:
            _promote(next_key=next_key, active=active, now=now)
            promoted = next_key.kid
            if active is not None:
                retired, retired_until = active.kid, now + retired_key_retention()
            created_next = _insert(state=SigningKey.State.NEXT, algorithm=None, now=now).kid
        else:
            deferred_until = promotable_at
            logger.info("Deferred promoting signing key %s until %s.", next_key.kid, promotable_at.isoformat())

        expired = SigningKey.objects.filter(
            state=SigningKey.State.RETIRED, retired_at__lte=now - retired_key_retention()
        ).order_by("retired_at", "id")
        removed = tuple(expired.values_list("kid", flat=True))
        if removed:
            SigningKey.objects.filter(kid__in=removed).delete()
            logger.info("Removed retired signing keys %s.", ", ".join(removed))
    _expire_key_cache_now_and_on_commit()
    result = RotationResult(
        promoted=promoted,
        retired=retired,
        retired_until=retired_until,
        created_next=created_next,
        removed=removed,
        deferred_until=deferred_until,
    )
    _rotation_record(result, request=request)
    return result


def _rotation_record(result: RotationResult, *, request: HttpRequest | None) -> None:
    # Public key ids only: the event says which key moved to which state, never anything of the key itself.
    states = {result.promoted: SigningKey.State.ACTIVE, result.retired: SigningKey.State.RETIRED,
              result.created_next: SigningKey.State.NEXT, **dict.fromkeys(result.removed, "removed")}
    detail: dict[str, Any] = {"states": {kid: str(state) for kid, state in states.items() if kid}}
    if result.retired_until:
        detail["retired_until"] = result.retired_until.isoformat()
    if result.deferred_until:
        detail["deferred_until"] = result.deferred_until.isoformat()
    event_record(type=events.KEY_ROTATED, outcome=events.SUCCESS, request=request,
                 reason="deferred" if result.deferred_until else "rotated", detail=detail)


def rotation_summary(result: RotationResult) -> list[str]:
    """One sentence per thing a rotation did, for the CLI and the admin; public key ids only."""

    def when(moment: datetime | None) -> str:
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z" if moment else "-"

    sentences = []
    if result.promoted:
        sentences.append(f"Promoted {result.promoted} to active: it signs new tokens from now on.")
    if result.retired:
        sentences.append(
            f"Retired {result.retired}: it stays published until {when(result.retired_until)}, when every token it "
            "signed has expired."
        )
    if result.created_next:
        sentences.append(f"Created next key {result.created_next}: published now, signing after a later rotation.")
    if result.deferred_until:
        sentences.append(
            "Did not promote the next key yet: resource servers may not have fetched it. Run rotate again after "
            f"{when(result.deferred_until)}."
        )
    sentences.extend(f"Removed {kid}: every token it signed has expired." for kid in result.removed)
    return sentences
