"""What the admin console's landing page shows: counts, recent alerts and sign-in failures over time."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from audit import charts, events
from audit.selectors import event_outcome_series, event_recent_alerts
from clients.models import Client


def console_overview() -> dict:
    """Counts of users, clients and live tokens, the newest alerts, and two charts of sign-in failures and alerts.

    Each count is one indexed query; the charts are one grouped query each over the audit (outcome, created_at)
    index, so the page stays fast however many events are stored.
    """
    now = timezone.now()
    sign_in_failures = (events.LOGIN_FAILED,)
    return {
        "counts": [
            ("Users", get_user_model().objects.count(), "admin:accounts_user_changelist"),
            ("Clients", Client.objects.filter(enabled=True).count(), "admin:clients_client_changelist"),
            ("Active access tokens", get_access_token_model().objects.filter(expires__gt=now).count(), None),
            ("Active refresh tokens", get_refresh_token_model().objects.filter(revoked__isnull=True).count(), None),
        ],
        "alerts": event_recent_alerts(limit=5),
        "charts": [
            charts.outcome_bar_chart(
                slug="signin-day", title="Sign-in failures and alerts per hour, last 24 hours (UTC)",
                buckets=event_outcome_series(now=now, unit="hour", periods=24, failure_types=sign_in_failures),
                label=charts.hour_label, long_label=charts.hour_long_label, label_every=3,
            ),
            charts.outcome_bar_chart(
                slug="signin-week", title="Sign-in failures and alerts per day, last 7 days (UTC)",
                buckets=event_outcome_series(now=now, unit="day", periods=7, failure_types=sign_in_failures),
                label=charts.day_label, long_label=charts.day_long_label,
            ),
        ],
    }
