"""The user and role CLI: the exact spellings operators' scripts use, and its one-line errors."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role, User

ROOT = Path(__file__).resolve().parents[2]


def run(*args, stdin=None):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
class TestRoleCreate:
    def test_role_create_with_description(self):
        output = run("role", "create", "orders:write", "--description", "Write orders")
        assert "orders:write" in output
        assert Role.objects.get(name="orders:write").description == "Write orders"

    def test_duplicate_role_is_refused(self, role):
        with pytest.raises(CommandError, match="already exists"):
            run("role", "create", role.name)
        assert Role.objects.count() == 1

    @pytest.mark.parametrize("name", ["Admin", "has space", "lead-", "x" * 65])
    def test_malformed_role_name_is_refused(self, name):
        with pytest.raises(CommandError, match="role name"):
            run("role", "create", name)
        assert not Role.objects.exists()


@pytest.mark.django_db
class TestUserCreate:
    def test_user_create_with_roles_staff_and_password_from_stdin(self, role, monkeypatch, password):
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        output = run("user", "create", "Alice", "--email", "alice@example.com", "--role", role.name,
                     "--staff", "--password-stdin")
        user = User.objects.get(username="Alice")
        assert str(user.subject) in output
        assert user.is_staff and not user.is_superuser
        assert user.check_password(password)
        assert user.role_names() == [role.name]

    def test_superuser_flag_makes_a_staff_superuser(self):
        run("user", "create", "boss", "--superuser")
        user = User.objects.get(username="boss")
        assert user.is_superuser and user.is_staff
        assert not user.has_usable_password()

    def test_unknown_role_is_refused_and_nothing_is_written(self):
        with pytest.raises(CommandError, match="Unknown role: ghost"):
            run("user", "create", "bob", "--role", "ghost")
        assert not User.objects.exists()

    def test_duplicate_username_in_another_case_is_refused(self, make_user):
        make_user(username="carol")
        with pytest.raises(CommandError, match="already exists"):
            run("user", "create", "CAROL")
        assert User.objects.count() == 1

    def test_duplicate_email_in_another_case_is_refused(self, make_user):
        make_user(username="carol", email="carol@example.com")
        with pytest.raises(CommandError, match="email address already exists"):
            run("user", "create", "caroline", "--email", "Carol@Example.com")

    @pytest.mark.parametrize(
        "weak, reason",
        [("short-pw", "too short"), ("password1234", "too common"), ("48213975062119", "entirely numeric"),
         ("daveydave-example", "too similar")],
    )
    def test_rejected_password_is_refused_and_nothing_is_written(self, monkeypatch, weak, reason):
        monkeypatch.setattr(sys, "stdin", io.StringIO(weak + "\n"))
        with pytest.raises(CommandError, match=reason):
            run("user", "create", "daveydave", "--email", "daveydave@example.com", "--password-stdin")
        assert not User.objects.exists()

    def test_empty_stdin_is_refused(self, monkeypatch):
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        with pytest.raises(CommandError, match="standard input held no password"):
            run("user", "create", "erin", "--password-stdin")


@pytest.mark.django_db
class TestUserSetRoles:
    def test_set_roles_replaces_every_role(self, make_user):
        user = make_user(roles=["admin", "orders:read"])
        Role.objects.create(name="orders:write")
        run("user", "set-roles", "ALICE", "orders:write", "orders:read")
        assert user.role_names() == ["orders:read", "orders:write"]

    def test_set_roles_with_unknown_role_changes_nothing(self, make_user):
        user = make_user(roles=["admin"])
        with pytest.raises(CommandError, match="Unknown role: ghost"):
            run("user", "set-roles", "alice", "admin", "ghost")
        assert user.role_names() == ["admin"]

    def test_set_roles_for_unknown_user_fails(self):
        with pytest.raises(CommandError, match="No user named 'nobody'"):
            run("user", "set-roles", "nobody")


def test_cli_reads_the_password_from_real_stdin_and_exits_non_zero_on_error(tmp_path):
    """Through a real process: exit codes and the one-line message an operator's script sees."""
    env = {"PATH": "/usr/bin:/bin", "IDP_VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    ok = subprocess.run([python, "manage.py", "user", "create", "frank", "--password-stdin"], cwd=ROOT, env=env,
                        input="a-long-enough-passphrase\n", capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([python, "manage.py", "user", "create", "frank", "--password-stdin"], cwd=ROOT, env=env,
                         input="a-long-enough-passphrase\n", capture_output=True, text=True)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == ["CommandError: username: A user with that username already exists."]
