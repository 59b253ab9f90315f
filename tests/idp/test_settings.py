"""Configuration from the environment: development secrets on loopback, refusal elsewhere, https hardening."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SECRET = "p" * 20 + "Q7%kZ2!vL9@xR4#mT8^wN1&bF6*hJ3(sD5)"


def manage(*args, env=None, tmp_path):
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "IDP_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def production_env(tmp_path, **extra):
    return {"IDP_ISSUER": "https://id.example.com", "SECRET_KEY": PRODUCTION_SECRET,
            "IDP_KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3", **extra}


def settings_value(name, env, tmp_path):
    result = manage("shell", "-c", f"from django.conf import settings; print(repr(settings.{name}))",
                    env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("missing", ["SECRET_KEY", "IDP_KEY_ENCRYPTION_KEY"])
def test_refuses_to_start_off_loopback_without_real_secrets(tmp_path, missing):
    env = production_env(tmp_path)
    del env[missing]
    result = manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
    assert f"set {missing} in the environment" in result.stderr
    assert not (tmp_path / "var" / "secrets").exists()


def test_loopback_generates_secrets_once_with_mode_0600_and_reuses_them(tmp_path):
    first = settings_value("SECRET_KEY", {}, tmp_path)
    secret_file = tmp_path / "var" / "secrets" / "secret_key"
    kek_file = tmp_path / "var" / "secrets" / "key_encryption_key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    Fernet(kek_file.read_text().strip())  # a usable Fernet key
    assert settings_value("SECRET_KEY", {}, tmp_path) == first
    assert len(first) > 50


def test_malformed_key_encryption_key_is_refused(tmp_path):
    result = manage("check", env=production_env(tmp_path, IDP_KEY_ENCRYPTION_KEY="not-a-key"), tmp_path=tmp_path)
    assert result.returncode != 0
    assert "IDP_KEY_ENCRYPTION_KEY must be a Fernet key" in result.stderr


def test_hosts_and_csrf_origins_derive_from_the_issuer(tmp_path):
    env = production_env(tmp_path, IDP_ISSUER="https://id.example.com:8443/")
    assert settings_value("ALLOWED_HOSTS", env, tmp_path) == "['id.example.com']"
    assert settings_value("CSRF_TRUSTED_ORIGINS", env, tmp_path) == "['https://id.example.com:8443']"
    assert settings_value("IDP_ISSUER", env, tmp_path) == "'https://id.example.com:8443'"


def test_https_issuer_turns_on_secure_cookies_hsts_and_ssl_redirect(tmp_path):
    env = production_env(tmp_path)
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT"):
        assert settings_value(name, env, tmp_path) == "True"
    assert int(settings_value("SECURE_HSTS_SECONDS", env, tmp_path)) >= 31_536_000
    assert settings_value("DEBUG", env, tmp_path) == "False"


def test_forwarded_headers_are_trusted_only_with_idp_trust_proxy(tmp_path):
    env = production_env(tmp_path)
    assert settings_value("USE_X_FORWARDED_HOST", env, tmp_path) == "False"
    assert settings_value("SECURE_PROXY_SSL_HEADER", env, tmp_path) == "None"
    trusted = {**env, "IDP_TRUST_PROXY": "1"}
    assert settings_value("USE_X_FORWARDED_HOST", trusted, tmp_path) == "True"
    assert settings_value("SECURE_PROXY_SSL_HEADER", trusted, tmp_path) == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_check_deploy_reports_nothing_with_a_production_like_environment(tmp_path):
    env = production_env(tmp_path)
    assert manage("migrate", "-v0", env=env, tmp_path=tmp_path).returncode == 0
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_by_default_on_loopback(tmp_path):
    assert settings_value("DEBUG", {}, tmp_path) == "False"
