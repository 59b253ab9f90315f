"""The one authentication backend: username or email, brute-force throttling, equal cost, audited outcomes.

Every caller of `django.contrib.auth.authenticate(request, username=..., password=...)` goes through it: the login
page, the Django admin login and the first-party cookie API. It records login.succeeded / login.failed itself, so
callers must not record them again; login.succeeded means the credentials were verified (a caller may still
refuse the user afterwards, as the admin login does for non-staff users).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import make_password

from accounts.models import User
from accounts.throttling import login_failure_count, login_lock_get, login_success_reset
from audit import events
from audit.request_meta import client_ip
from audit.services import event_record

REASON_UNKNOWN_USER = "unknown_user"
REASON_BAD_PASSWORD = "bad_password"
REASON_LOCKED = "locked"
REASON_INACTIVE = "inactive"
# Counted against when an HTTP request carries no client address: IPv6's unspecified address, never a real client.
UNKNOWN_ADDRESS = "::"


def _user_for_login(identifier: str) -> User | None:
    """The user named by a username or, when it holds an "@", an email address (both without regard to case).

    An email match comes first; a username containing "@" that is nobody's email still signs in. Email addresses
    are unique without regard to case (accounts_user_email_ci_unique), so at most one user matches.
    """
    if "@" in identifier:
        by_email = list(User.objects.filter(email__iexact=identifier).order_by("pk")[:2])
        if len(by_email) == 1:
            return by_email[0]
    return User.objects.filter(username__iexact=identifier).first()


class IdpAuthenticationBackend(ModelBackend):
    """ModelBackend plus lockouts (accounts/throttling.py) and one password hash on every path.

    Every attempt, whatever its outcome, costs exactly one password hash (Argon2id): a real check for a known user
    (active or not, so "inactive" is learnt only with the right password), and a hash of the typed password with
    the default hasher for an unknown user or a locked attempt, as Django's ModelBackend does for unknown users.
    Locked, unknown, wrong and inactive all return None, so every caller answers them identically. Nothing
    sleeps: the waits are locks that refuse attempts, not delays that hold a worker.

    A known account is counted under its own username however it was typed (username, email, another case), so
    switching spellings earns no fresh guesses; an unknown identifier is counted as typed. An HTTP request without
    a client address (a unix-socket deployment) is counted under one shared "unknown" address rather than not at
    all; only calls without a request (a management command) are not throttled.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        identifier = str(username)
        ip = (client_ip(request) or UNKNOWN_ADDRESS) if request is not None else None
        user = _user_for_login(identifier)
        counted_as = user.get_username() if user is not None else identifier
        lock = login_lock_get(username=counted_as, ip=ip) if ip else None
        if lock is not None:
            make_password(password)  # the same cost as a real check; the password itself is never tried
            self._record_failure(request, identifier, user, REASON_LOCKED, {"scope": lock.scope})
            return None
        if user is None:
            make_password(password)
            reason = REASON_UNKNOWN_USER
        elif not user.check_password(password):
            reason = REASON_BAD_PASSWORD
        elif not self.user_can_authenticate(user):
            reason = REASON_INACTIVE
        else:
            if ip:
                login_success_reset(username=counted_as, ip=ip)
            event_record(
                type=events.LOGIN_SUCCEEDED,
                outcome=events.SUCCESS,
                request=request,
                user=user,
                detail={"identifier": "email" if identifier.lower() == user.email.lower() else "username"},
            )
            return user
        self._record_failure(request, identifier, user, reason, {})
        if ip:
            login_failure_count(username=counted_as, ip=ip, request=request, user=user)
        return None

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        # ModelBackend's async twin would skip the throttle; run the one implementation instead.
        return await sync_to_async(self.authenticate)(request, username=username, password=password, **kwargs)

    @staticmethod
    def _record_failure(request, identifier: str, user: User | None, reason: str, detail: dict) -> None:
        event_record(
            type=events.LOGIN_FAILED,
            outcome=events.FAILURE,
            request=request,
            user=user,
            # The account's own name when there is one, so that its failures group together however it was typed.
            username=user.get_username() if user is not None else identifier,
            reason=reason,
            detail=detail,
        )
