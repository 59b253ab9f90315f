"""Writes for users, roles, browser sessions and passwords. Every caller (admin, CLI, API, pages) goes through these."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from importlib import import_module
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from accounts.models import LoginThrottle, Role, User, UserSession
from accounts.sessions import END_REVOKED, SESSION_ROW, SESSION_SID, browser_label
from accounts.throttling import login_lockout_clear, throttle_username
from audit import events
from audit.request_meta import client_ip, user_agent
from audit.services import event_record


def role_create(*, name: str, description: str = "") -> Role:
    """Create a role; raises ValidationError for a malformed or duplicate name."""
    role = Role(name=name, description=description)
    role.full_clean()
    role.save()
    return role


def _roles_by_name(names: Iterable[str]) -> list[Role]:
    wanted = list(dict.fromkeys(names))
    found = {role.name: role for role in Role.objects.filter(name__in=wanted)}
    unknown = [name for name in wanted if name not in found]
    if unknown:
        raise ValidationError(f"Unknown role: {', '.join(unknown)}. Create it first with `role create`.")
    return [found[name] for name in wanted]


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    role_names: Iterable[str] = (),
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    """Create a user with the given roles, all or nothing.

    The password is checked against AUTH_PASSWORD_VALIDATORS; without one the user gets an unusable password
    (they sign in after a password reset). Raises ValidationError for any rejected value.
    """
    roles = _roles_by_name(role_names)
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    user.full_clean(exclude=["password"])
    if password is None:
        user.set_unusable_password()
    else:
        validate_password(password, user)
        user.set_password(password)
    user.save()
    user.roles.set(roles)
    return user


@transaction.atomic
def user_set_roles(*, user: User, role_names: Iterable[str]) -> User:
    """Replace the user's roles with exactly these; raises ValidationError for an unknown role."""
    user.roles.set(_roles_by_name(role_names))
    return user


# --- Browser sessions (accounts.UserSession mirrors each signed-in session in the session store). -----------
#
# A session ends in one of two ways, and both leave neither the stored session nor its row behind:
# - in its own request, through django.contrib.auth.logout(): the user_logged_out receiver calls
#   user_session_end, which deletes the row and records `logout`;
# - from elsewhere (the account page, a password change or reset, an administrator): the stored session and the
#   row are deleted here; the next request with that cookie finds no session and is anonymous.
# SessionActivityMiddleware refuses a session whose row is gone, so deleting the row alone is enough to end it.


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def _stale_sessions(now: datetime) -> Q:
    idle_limit = now - timedelta(seconds=settings.IDP_SESSION_IDLE_TIMEOUT)
    age_limit = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    return Q(last_seen_at__lt=idle_limit) | Q(created_at__lt=age_limit)


def user_session_start(*, user: User, request) -> UserSession:
    """Record the session a login just authenticated (its key is already rotated), and forget the user's dead ones.

    The row's primary key is kept in the session, so the row follows the session when its key is cycled again.
    """
    session = request.session
    if session.session_key is None:
        # login() flushed a session that belonged to someone else; the new session needs its key now.
        session.save()
    now = timezone.now()
    UserSession.objects.filter(_stale_sessions(now), user=user).delete()
    row, _created = UserSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={"user": user, "last_seen_at": now, "ip": client_ip(request), "user_agent": user_agent(request)},
    )
    session[SESSION_ROW] = row.pk
    return row


def user_session_touch(*, user: User, request, record_activity: bool) -> bool:
    """Whether the request's session still has its row; with record_activity, also note that it was seen now."""
    row_pk = request.session.get(SESSION_ROW)
    if row_pk is None:
        return False
    rows = UserSession.objects.filter(pk=row_pk, user=user)
    if record_activity:
        return rows.update(last_seen_at=timezone.now(), session_key=request.session.session_key) > 0
    return rows.exists()


def user_session_follow_key(*, request) -> None:
    """Point the session's row at the session's current key, after something (a password change) cycled it."""
    row_pk = request.session.get(SESSION_ROW)
    if row_pk is not None and request.session.session_key is not None:
        UserSession.objects.filter(pk=row_pk).update(session_key=request.session.session_key)


def user_session_expire(*, request, reason: str) -> None:
    """End the request's own session now (logout), recording `reason` on its logout event."""
    request.idp_logout_reason = reason
    logout(request)


def user_session_end(*, user: User | None, request) -> None:
    """Forget the row of the session being logged out and record `logout` (called from the user_logged_out signal).

    The reason is set by user_session_expire when the server ended the session; a logout the user asked for
    (the sign-out page, RP-initiated logout, the admin) has none.
    """
    session = getattr(request, "session", None)
    if user is None or session is None:
        return
    # By primary key and by key: either may be all that is left if the other went stale.
    rows = UserSession.objects.filter(Q(pk=session.get(SESSION_ROW)) | Q(session_key=session.session_key), user=user)
    rows.delete()
    event_record(
        type=events.LOGOUT,
        outcome=events.SUCCESS,
        request=request,
        user=user,
        reason=getattr(request, "idp_logout_reason", ""),
        detail={"sid": session.get(SESSION_SID, "")},
    )


def _user_sessions_end(*, user: User, rows: Iterable[UserSession], request, reason: str) -> int:
    """End these sessions of `user`, one session.revoked event each; returns how many were ended.

    The request's own session is ended with logout() rather than deleted from under it: deleting it would make
    the session middleware's save at the end of this request fail.
    """
    current_key = request.session.session_key if request is not None and hasattr(request, "session") else None
    current_row = request.session.get(SESSION_ROW) if current_key is not None else None
    actor = getattr(request, "user", None)
    # An administrator ending someone else's sessions is named in the detail; the event's user is the one signed out.
    by_someone_else = actor is not None and actor.is_authenticated and actor != user
    detail_actor = {"actor": actor.get_username()} if by_someone_else else {}
    store = _session_store()
    ended = 0
    for row in rows:
        if row.pk == current_row or row.session_key == current_key:
            user_session_expire(request=request, reason=END_REVOKED)
        else:
            store(session_key=row.session_key).delete()
            UserSession.objects.filter(pk=row.pk).delete()
        ended += 1
        event_record(
            type=events.SESSION_REVOKED,
            outcome=events.SUCCESS,
            request=request,
            user=user,
            reason=reason,
            detail={"session": row.pk, "ip": row.ip, "browser": browser_label(row.user_agent), **detail_actor},
        )
    return ended


def user_session_revoke(*, user: User, session_pk: int, request) -> UserSession:
    """End one of the user's own sessions; raises UserSession.DoesNotExist for anyone else's (or none)."""
    row = UserSession.objects.get(pk=session_pk, user=user)
    _user_sessions_end(user=user, rows=[row], request=request, reason="user_request")
    return row


def user_sessions_revoke_others(*, user: User, request, reason: str = "sign_out_others") -> int:
    """End every session of the user except the request's own; returns how many were ended."""
    rows = UserSession.objects.filter(user=user)
    current_row = request.session.get(SESSION_ROW)
    if current_row is not None:
        rows = rows.exclude(pk=current_row)
    return _user_sessions_end(user=user, rows=list(rows), request=request, reason=reason)


def _user_tokens_revoke(*, user: User) -> dict[str, int]:
    """Revoke the user's refresh tokens and delete their access tokens, ID tokens and unredeemed codes."""
    refresh_model, access_model = get_refresh_token_model(), get_access_token_model()
    with transaction.atomic():
        now = timezone.now()
        live_refresh = refresh_model.objects.filter(user=user, revoked__isnull=True)
        try:
            with transaction.atomic():
                # `updated` is auto_now, which a queryset update does not trigger (as in DOT's revoke_family).
                refresh_tokens = live_refresh.update(revoked=now, updated=now)
        except IntegrityError:
            # (token_checksum, revoked) is unique; two live rows sharing a checksum need their own timestamps.
            refresh_tokens = 0
            for token in live_refresh:
                token.revoke()
                refresh_tokens += 1
        _total, deleted = access_model.objects.filter(user=user).delete()
        access_tokens = deleted.get(access_model._meta.label, 0)
        get_id_token_model().objects.filter(user=user).delete()
        get_grant_model().objects.filter(user=user).delete()
    return {"refresh_tokens": refresh_tokens, "access_tokens": access_tokens}


def user_sign_out_everywhere(*, user: User, request) -> dict[str, int]:
    """End all of the user's sessions and revoke all of their tokens; returns what was ended, by kind.

    JWT access tokens already handed out stay verifiable at resource servers that check only signatures until
    they expire (minutes); introspection and userinfo refuse them at once because their rows are gone.
    """
    tokens = _user_tokens_revoke(user=user)
    sessions = _user_sessions_end(
        user=user, rows=list(UserSession.objects.filter(user=user)), request=request, reason="sign_out_everywhere"
    )
    event_record(
        type=events.USER_SIGNED_OUT_EVERYWHERE,
        outcome=events.SUCCESS,
        request=request,
        user=user,
        # Key names holding "token" are masked by the audit scrubber, so the counts are named without it.
        detail={"sessions_ended": sessions, "refresh_revoked": tokens["refresh_tokens"],
                "access_revoked": tokens["access_tokens"]},
    )
    return {"sessions": sessions, **tokens}


# --- Passwords chosen by the user (the forms have already checked the current password and the validators). -----


def user_password_change(*, user: User, new_password: str, request) -> None:
    """Set the user's new password, keep the request's session signed in, end every other session and revoke
    every token issued to the user (whoever knew the old password may hold some)."""
    user.set_password(new_password)
    user.save(update_fields=["password"])
    # Keeps this session valid under the new password hash; it also cycles the key, so the row must follow it.
    update_session_auth_hash(request, user)
    user_session_follow_key(request=request)
    ended = user_sessions_revoke_others(user=user, request=request, reason="password_changed")
    tokens = _user_tokens_revoke(user=user)
    event_record(type=events.PASSWORD_CHANGED, outcome=events.SUCCESS, request=request, user=user,
                 detail={"other_sessions_ended": ended, "refresh_revoked": tokens["refresh_tokens"],
                         "access_revoked": tokens["access_tokens"]})


def user_password_change_refused(*, user: User, request, failures: int) -> None:
    """Record a password change refused because the current password was wrong."""
    event_record(type=events.PASSWORD_CHANGED, outcome=events.FAILURE, request=request, user=user,
                 reason="wrong_current_password", detail={"failures": failures})


def user_password_reset_requested(*, email: str, users: Iterable[User], request) -> None:
    """Record a reset request; whether an account matched is stored for operators, never shown to the requester."""
    matched = list(users)
    event_record(
        type=events.PASSWORD_RESET_REQUESTED,
        outcome=events.SUCCESS,
        request=request,
        user=matched[0] if len(matched) == 1 else None,
        detail={"account_found": bool(matched), "email_domain": email.rpartition("@")[2].lower()},
    )


def user_password_reset_complete(*, user: User, request) -> None:
    """After a reset link set a new password: end every session, revoke every token, record password.reset."""
    ended = _user_sessions_end(user=user, rows=list(UserSession.objects.filter(user=user)), request=request,
                               reason="password_reset")
    tokens = _user_tokens_revoke(user=user)
    event_record(type=events.PASSWORD_RESET, outcome=events.SUCCESS, request=request, user=user,
                 detail={"sessions_ended": ended, "refresh_revoked": tokens["refresh_tokens"],
                         "access_revoked": tokens["access_tokens"]})


def user_password_reset_refused(*, user: User | None, request) -> None:
    """Record a reset link that was refused (expired, already used, altered)."""
    event_record(type=events.PASSWORD_RESET, outcome=events.FAILURE, request=request, user=user,
                 reason="invalid_link")


# --- Administrators acting on an account (the admin console). ------------------------------------------------------


def user_password_reset_send(*, user: User, request) -> bool:
    """Email the user a single-use reset link (as the reset page does); False, sending nothing, without an email.

    The link is built from IDP_ISSUER, never from the request's Host header, and expires after
    PASSWORD_RESET_TIMEOUT seconds. Records password.reset_requested naming the administrator who asked.
    """
    if not user.email or not user.is_active:
        return False
    issuer = urlsplit(settings.IDP_ISSUER)
    context = {
        "email": user.email,
        "domain": issuer.netloc,
        "site_name": issuer.netloc,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": issuer.scheme,
        "valid_minutes": max(1, settings.PASSWORD_RESET_TIMEOUT // 60),
    }
    subject = "".join(render_to_string("registration/password_reset_subject.txt", context).splitlines())
    body = render_to_string("registration/password_reset_email.txt", context)
    send_mail(subject, body, None, [user.email])
    event_record(type=events.PASSWORD_RESET_REQUESTED, outcome=events.SUCCESS, request=request, user=user,
                 detail={"account_found": True, "sent_by": request.user.get_username() if request else "",
                         "email_domain": user.email.rpartition("@")[2].lower()})
    return True


@transaction.atomic
def user_lock(*, user: User, request) -> dict[str, int]:
    """Lock an account: it can no longer sign in, and every session and token it has ends now.

    Records user.locked naming the administrator (the session and token ends are in user.signed_out_everywhere).
    """
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    ended = user_sign_out_everywhere(user=user, request=request)
    event_record(type=events.USER_LOCKED, outcome=events.SUCCESS, request=request, user=user,
                 detail={"locked_by": request.user.get_username() if request else ""})
    return ended


@transaction.atomic
def user_unlock(*, user: User, request) -> int:
    """Unlock an account: it may sign in again, and its sign-in lockouts (any IP) are cleared. Returns how many."""
    User.objects.filter(pk=user.pk).update(is_active=True)
    user.is_active = True
    names = {throttle_username(user.get_username())} | ({throttle_username(user.email)} if user.email else set())
    cleared = login_lockout_clear(throttles=list(LoginThrottle.objects.filter(username__in=names)), request=request)
    event_record(type=events.USER_UNLOCKED, outcome=events.SUCCESS, request=request, user=user,
                 detail={"unlocked_by": request.user.get_username() if request else "", "lockouts_cleared": cleared})
    return cleared
