"""Writes for users and roles. Every caller (admin, CLI, API) goes through these."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Role, User


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
