"""Brute-force protection for sign-in: failures counted per (username, IP) and per IP, locks always temporary.

How it works (IdpAuthenticationBackend calls these for every `authenticate()`, so the login page, the admin login
and the cookie API are all covered):
- Each failed sign-in adds one to two counters: the (username as typed, lower-cased; IP) pair and the IP alone.
- When a counter reaches its limit (IDP_LOGIN_USER_IP_FAILURE_LIMIT, IDP_LOGIN_IP_FAILURE_LIMIT) it locks for
  BASE * 2^(failures - limit) seconds, capped at MAX: the first lock lasts BASE, and every failure after a lock
  ends doubles the next one. Attempts during a lock are refused without being counted, so a lock never extends
  itself; only new failures after it ends do.
- A counter whose last failure is older than IDP_LOGIN_FAILURE_WINDOW_SECONDS starts again from zero.
- A successful sign-in deletes the pair's counter, never the IP's (a valid account must not launder a spray).
- Because every lock belongs to one IP (an IPv6 /64, which one host usually holds whole) and always ends, a
  guesser can slow down only themselves and their neighbours on that address; the user signs in from anywhere else.
- Events: lockout.set when a lock starts (detail: scope, failures, seconds); lockout.cleared only when an
  administrator clears a counter. A lock that runs out, or a counter reset by a successful sign-in (which cannot
  happen during a lock), is not an event: nothing was decided then.

Why not django-axes: it has one failure limit for every lockout parameter (no separate, higher per-IP threshold),
answers a locked attempt from its own backend before any password hashing (a timing difference) with its own
lockout response unless replaced, and resolves client IPs with its own rules instead of audit.request_meta.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from accounts.models import LoginThrottle
from audit import events
from audit.services import event_record

USERNAME_KEY_LENGTH = LoginThrottle._meta.get_field("username").max_length
# Doubling stops mattering long before this; it keeps 2**n a small integer for absurd failure counts.
_MAX_DOUBLINGS = 32


@dataclass(frozen=True)
class LockStarted:
    """A lock that one failure started."""

    scope: str
    failures: int
    seconds: int


def throttle_username(username: str) -> str:
    """The counter key for a typed username or email: lower-cased, cut to the column's length."""
    return username.lower()[:USERNAME_KEY_LENGTH]


def throttle_ip(ip: str) -> str:
    """The counter key for an IP: the address itself for IPv4, its /64 network for IPv6.

    One IPv6 subscriber usually holds a whole /64 (RFC 6177 recommends at least that per site), so counting single
    addresses would give one host 2^64 fresh counters.
    """
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return ipaddress.IPv6Network((address, 64), strict=False).network_address.compressed
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped.compressed
    return address.compressed


def lock_seconds(*, failures: int, limit: int) -> int:
    """How long the failure that brought a counter to `failures` locks it: BASE doubled per failure past the limit."""
    doublings = min(max(failures - limit, 0), _MAX_DOUBLINGS)
    return min(settings.IDP_LOGIN_LOCK_BASE_SECONDS * 2**doublings, settings.IDP_LOGIN_LOCK_MAX_SECONDS)


def _scopes(username: str, ip: str) -> list[tuple[str, str, str, int]]:
    """(scope, username key, ip key, failure limit) of both counters a sign-in attempt touches."""
    ip_key = throttle_ip(ip)
    return [
        (LoginThrottle.SCOPE_USER_IP, throttle_username(username), ip_key, settings.IDP_LOGIN_USER_IP_FAILURE_LIMIT),
        (LoginThrottle.SCOPE_IP, "", ip_key, settings.IDP_LOGIN_IP_FAILURE_LIMIT),
    ]


# --- Selectors. ------------------------------------------------------------------------------------


def login_lock_get(*, username: str, ip: str, now: datetime | None = None) -> LoginThrottle | None:
    """The counter that locks this username from this IP now (the pair's or the IP's), or None."""
    now = now or timezone.now()
    matches = Q()
    for scope, username_key, ip_key, _limit in _scopes(username, ip):
        matches |= Q(scope=scope, username=username_key, ip=ip_key)
    return LoginThrottle.objects.filter(matches, locked_until__gt=now).order_by("-locked_until").first()


def login_throttles_locked(*, now: datetime | None = None):
    """Counters whose lock is running now."""
    return LoginThrottle.objects.filter(locked_until__gt=now or timezone.now())


# --- Services. -------------------------------------------------------------------------------------


def _count_failure(*, scope: str, username: str, ip: str, limit: int, now: datetime) -> LockStarted | None:
    # A quiet window forgets old failures, but never cuts short a lock that is still running.
    stale = Q(last_failure_at__lt=now - timedelta(seconds=settings.IDP_LOGIN_FAILURE_WINDOW_SECONDS)) & ~Q(
        locked_until__gt=now
    )
    row = LoginThrottle.objects.filter(scope=scope, username=username, ip=ip)
    # One transaction per counter: the UPDATE holds the row lock (PostgreSQL) or the database write lock (SQLite,
    # IMMEDIATE transactions) until commit, so concurrent failures are each counted once and each sees its own total.
    with transaction.atomic():
        # INSERT ... ON CONFLICT DO NOTHING: the first failure creates the counter; a concurrent one finds it.
        LoginThrottle.objects.bulk_create(
            [
                LoginThrottle(
                    scope=scope, username=username, ip=ip, failures=0, first_failure_at=now, last_failure_at=now
                )
            ],
            ignore_conflicts=True,
        )
        # Every SET expression reads the row as it was, so `stale` means the same thing in each of them.
        row.update(
            failures=Case(When(stale, then=Value(1)), default=F("failures") + 1),
            first_failure_at=Case(When(stale, then=Value(now)), default=F("first_failure_at")),
            locked_until=Case(When(stale, then=Value(None, output_field=DateTimeField())), default=F("locked_until")),
            last_failure_at=now,
        )
        failures = row.values_list("failures", flat=True).get()
        if failures < limit:
            return None
        seconds = lock_seconds(failures=failures, limit=limit)
        row.update(locked_until=now + timedelta(seconds=seconds))
    return LockStarted(scope=scope, failures=failures, seconds=seconds)


def login_failure_count(
    *, username: str, ip: str, request=None, user=None, now: datetime | None = None
) -> list[LockStarted]:
    """Count one failed sign-in against the pair and the IP; returns the locks it started (each recorded).

    Call it only for attempts whose password was checked: attempts refused during a lock are not counted.
    """
    now = now or timezone.now()
    started = []
    for scope, username_key, ip_key, limit in _scopes(username, ip):
        lock = _count_failure(scope=scope, username=username_key, ip=ip_key, limit=limit, now=now)
        if lock is None:
            continue
        started.append(lock)
        is_pair = scope == LoginThrottle.SCOPE_USER_IP
        event_record(
            type=events.LOCKOUT_SET,
            outcome=events.FAILURE,
            request=request,
            user=user if is_pair else None,
            username=username_key if is_pair else "",
            reason="too_many_failures",
            detail={"scope": scope, "failures": lock.failures, "seconds": lock.seconds},
        )
    return started


def login_success_reset(*, username: str, ip: str) -> None:
    """Forget the pair's failures after a successful sign-in; the IP's counter stays (it may be spraying)."""
    LoginThrottle.objects.filter(
        scope=LoginThrottle.SCOPE_USER_IP, username=throttle_username(username), ip=throttle_ip(ip)
    ).delete()


def login_lockout_clear(*, throttles: Iterable[LoginThrottle], request=None, now: datetime | None = None) -> int:
    """Delete these counters (an administrator's decision), recording lockout.cleared for each; returns how many."""
    now = now or timezone.now()
    cleared = 0
    for throttle in throttles:
        deleted, _ = LoginThrottle.objects.filter(pk=throttle.pk).delete()
        if not deleted:
            continue  # cleared meanwhile by someone else, or by a successful sign-in
        cleared += 1
        event_record(
            type=events.LOCKOUT_CLEARED,
            outcome=events.SUCCESS,
            request=request,  # the administrator is the event's user; the counter cleared is in the detail
            reason="admin",
            detail={
                "scope": throttle.scope,
                "username": throttle.username,
                "ip": throttle.ip,
                "failures": throttle.failures,
                "was_locked": throttle.locked_until is not None and throttle.locked_until > now,
            },
        )
    return cleared


def login_throttles_prune(*, now: datetime | None = None) -> int:
    """Delete counters that no longer count: no failure within the window and no lock running. Returns how many."""
    now = now or timezone.now()
    window = timedelta(seconds=settings.IDP_LOGIN_FAILURE_WINDOW_SECONDS)
    stale = LoginThrottle.objects.filter(last_failure_at__lt=now - window).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    )
    deleted, _ = stale.delete()
    return deleted
