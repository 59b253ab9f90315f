"""Reads about a user's browser sessions, for the account page and the admin console."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User, UserSession


def user_sessions_active(*, user: User) -> QuerySet[UserSession]:
    """The user's sessions that may still be in use, most recently seen first.

    A session idle past IDP_SESSION_IDLE_TIMEOUT or older than SESSION_COOKIE_AGE is ended at its next request, so
    it is not listed even if its row has not been cleaned up yet.
    """
    now = timezone.now()
    return UserSession.objects.filter(
        user=user,
        last_seen_at__gte=now - timedelta(seconds=settings.IDP_SESSION_IDLE_TIMEOUT),
        created_at__gte=now - timedelta(seconds=settings.SESSION_COOKIE_AGE),
    ).order_by("-last_seen_at", "-pk")
