"""System checks: each fires with its stable id in the dangerous situation and stays silent otherwise."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.db import DatabaseError
from django.utils import timezone

from idp import checks
from idp.keys import signing_key_ensure
from idp.models import SigningKey

ROOT = Path(__file__).resolve().parents[2]


def idp_ids(messages) -> list[str]:
    return sorted(message.id for message in messages if message.id.startswith("idp."))


@pytest.mark.django_db
def test_no_active_signing_key_warns_when_the_database_is_checked():
    messages = run_checks(databases=["default"])
    assert idp_ids(messages) == ["idp.W001"]
    assert "keys rotate" in messages[[m.id for m in messages].index("idp.W001")].hint


@pytest.mark.django_db
def test_key_checks_are_silent_once_bootstrapped():
    signing_key_ensure()
    assert idp_ids(run_checks(databases=["default"], include_deployment_checks=True)) == []


@pytest.mark.django_db
def test_key_checks_do_not_run_without_databases_so_ci_deploy_checks_pass_before_bootstrap():
    assert idp_ids(run_checks(include_deployment_checks=True)) == []


@pytest.mark.django_db
def test_key_checks_are_silent_when_the_table_does_not_exist_yet(monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def missing_table(self, sql, params=None):
        raise DatabaseError("no such table: idp_signingkey")

    monkeypatch.setattr(CursorWrapper, "execute", missing_table)
    assert checks.check_active_signing_key(databases=["default"]) == []
    assert checks.check_signing_key_age(databases=["default"]) == []


@pytest.mark.django_db
def test_an_active_key_older_than_the_rotation_period_warns(settings):
    settings.IDP_KEY_ROTATION_DAYS = 30
    signing_key_ensure()
    active = SigningKey.objects.get(state="active")
    SigningKey.objects.filter(pk=active.pk).update(activated_at=timezone.now() - timedelta(days=31))

    messages = checks.check_signing_key_age(databases=["default"])
    assert [message.id for message in messages] == ["idp.W002"]
    assert active.kid in messages[0].msg and "NIST SP 800-57" in messages[0].hint

    SigningKey.objects.filter(pk=active.pk).update(activated_at=timezone.now() - timedelta(days=29))
    assert checks.check_signing_key_age(databases=["default"]) == []


def test_rotation_age_is_not_checked_without_databases():
    assert checks.check_signing_key_age(databases=None) == []


def test_default_lifetimes_pass_the_lifetime_check():
    assert checks.check_access_token_lifetime() == []


@pytest.mark.parametrize(
    "change",
    [
        {"IDP_ACCESS_TOKEN_MAX_LIFETIME": 7200},
        {"OAUTH2_PROVIDER": {"ACCESS_TOKEN_EXPIRE_SECONDS": 36000}},
    ],
)
def test_access_tokens_longer_than_an_hour_warn(settings, change):
    for name, value in change.items():
        setattr(settings, name, {**settings.OAUTH2_PROVIDER, **value} if name == "OAUTH2_PROVIDER" else value)
    messages = checks.check_access_token_lifetime()
    assert [message.id for message in messages] == ["idp.W003"]
    assert "RFC 9068" in messages[0].hint and "RFC 9700" in messages[0].hint


def test_an_http_issuer_off_loopback_warns_at_deploy_time(settings):
    settings.IDP_ISSUER, settings.IDP_ISSUER_IS_HTTPS, settings.IDP_ISSUER_IS_LOOPBACK = (
        "http://id.example.com", False, False,
    )
    assert idp_ids(run_checks(include_deployment_checks=True)) == ["idp.W004"]
    assert idp_ids(run_checks()) == []


@pytest.mark.parametrize(
    ("issuer", "https", "loopback"),
    [("https://id.example.com", True, False), ("http://127.0.0.1:8000", False, True)],
)
def test_https_or_loopback_issuers_pass(settings, issuer, https, loopback):
    settings.IDP_ISSUER, settings.IDP_ISSUER_IS_HTTPS, settings.IDP_ISSUER_IS_LOOPBACK = issuer, https, loopback
    assert checks.check_issuer_uses_https() == []


@pytest.mark.parametrize("value", [False, None, "yes"])
def test_refresh_token_reuse_protection_must_be_on(settings, value):
    provider = {**settings.OAUTH2_PROVIDER, "REFRESH_TOKEN_REUSE_PROTECTION": value}
    if value is None:
        del provider["REFRESH_TOKEN_REUSE_PROTECTION"]
    settings.OAUTH2_PROVIDER = provider
    messages = checks.check_refresh_token_reuse_protection()
    assert [message.id for message in messages] == ["idp.W005"]
    assert "RFC 9700 §4.14.2" in messages[0].hint


def test_the_shipped_settings_pass_every_configuration_check():
    assert idp_ids(run_checks(include_deployment_checks=True)) == []


def test_ci_deploy_checks_pass_after_migrate_and_the_database_check_reports_the_missing_key(tmp_path):
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "IDP_VAR_DIR": str(tmp_path / "var"),
        "IDP_ISSUER": "https://id.example.com", "SECRET_KEY": "p" * 20 + "Q7%kZ2!vL9@xR4#mT8^wN1&bF6*hJ3(sD5)",
        "IDP_KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(), "DATABASE_URL": f"sqlite:///{tmp_path}/ci.sqlite3",
    }

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    migrate = manage("migrate", "--noinput", "-v0")
    assert migrate.returncode == 0, migrate.stderr
    deploy = manage("check", "--deploy", "--fail-level", "WARNING")
    assert deploy.returncode == 0, deploy.stderr
    database = manage("check", "--database", "default")
    assert "idp.W001" in database.stderr + database.stdout
