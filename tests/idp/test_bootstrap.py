"""`manage.py bootstrap`: a first administrator with a one-time password, only when none exists."""

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from accounts.models import User


@pytest.mark.django_db
def test_bootstrap_creates_an_admin_and_prints_the_password_once():
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    password = re.search(r"^\s{4}(\S+)$", out.getvalue(), re.M).group(1)
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert authenticate(username="admin", password=password) == admin

    again = io.StringIO()
    call_command("bootstrap", stdout=again)
    assert again.getvalue() == ""
    assert User.objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_bootstrap_leaves_an_existing_superuser_alone(admin_user):
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    assert out.getvalue() == ""
    assert not User.objects.filter(username="admin").exists()
