"""`manage.py tokens prune` removes expired and revoked rows and keeps live ones."""

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from clients.services import client_create
from idp.models import GrantContext

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()


@pytest.fixture
def client_app(db):
    return client_create(name="RP", client_type="confidential", grant_types=["authorization-code"],
                         redirect_uris=["https://rp.example.com/cb"], allowed_scopes=["openid"]).client


def make_pair(client, user, *, created, expires, revoked=None, family=None):
    access = AccessToken(user=user, application=client, scope="openid", expires=expires, token="",
                         token_checksum=uuid.uuid4().hex)
    access.save()
    refresh = RefreshToken(user=user, application=client, access_token=access, token="",
                           token_checksum=uuid.uuid4().hex, token_family=family or uuid.uuid4(), revoked=revoked)
    refresh.save()
    RefreshToken.objects.filter(pk=refresh.pk).update(created=created)
    return access, refresh


@pytest.mark.django_db
def test_prune_removes_idle_and_long_revoked_refresh_tokens_and_keeps_live_ones(client_app, make_user):
    user = make_user()
    now = timezone.now()
    live = make_pair(client_app, user, created=now, expires=now + timedelta(minutes=5))
    idle = make_pair(client_app, user, created=now - timedelta(days=15), expires=now - timedelta(days=15))
    revoked = make_pair(client_app, user, created=now - timedelta(days=40), expires=now - timedelta(days=40),
                        revoked=now - timedelta(days=31))
    Grant.objects.create(application=client_app, user=user, code="old", expires=now - timedelta(minutes=1),
                         redirect_uri="https://rp.example.com/cb", scope="openid")
    GrantContext.objects.create(code_checksum="c" * 64, client=client_app)
    GrantContext.objects.filter().update(created=now - timedelta(days=2))

    out = io.StringIO()
    call_command("tokens", "prune", stdout=out)

    remaining = set(RefreshToken.objects.values_list("pk", flat=True))
    assert live[1].pk in remaining
    assert idle[1].pk not in remaining and revoked[1].pk not in remaining
    assert not Grant.objects.exists()
    assert not GrantContext.objects.exists()
    assert "removed" in out.getvalue()


@pytest.mark.django_db
def test_prune_removes_stale_sign_in_counters_but_never_a_running_lock():
    from accounts.models import LoginThrottle
    from idp.pruning import tokens_prune

    now = timezone.now()
    old = now - timedelta(hours=2)
    LoginThrottle.objects.create(scope="ip", ip="203.0.113.1", failures=3, first_failure_at=old, last_failure_at=old)
    LoginThrottle.objects.create(scope="ip", ip="203.0.113.2", failures=40, first_failure_at=old, last_failure_at=old,
                                 locked_until=now + timedelta(minutes=5))
    LoginThrottle.objects.create(scope="ip", ip="203.0.113.3", failures=1, first_failure_at=now, last_failure_at=now)
    assert tokens_prune(now=now)["sign-in failure counters"] == 1
    assert sorted(LoginThrottle.objects.values_list("ip", flat=True)) == ["203.0.113.2", "203.0.113.3"]
