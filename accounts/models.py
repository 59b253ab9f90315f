"""Users with an immutable subject identifier, and the roles they hold."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

ROLE_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_.:-]{0,62}[a-z0-9])?$"

role_name_validator = RegexValidator(
    ROLE_NAME_PATTERN,
    "A role name is lower-case letters, digits and the separators . _ : - (for example admin or orders:write).",
)


class Role(models.Model):
    name = models.CharField(max_length=64, unique=True, validators=[role_name_validator])
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)


class CaseInsensitiveUserManager(UserManager):
    """Usernames are unique without regard to case, so they are looked up the same way."""

    def get_by_natural_key(self, username: str) -> User:
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})


class User(AbstractUser):
    # OpenID Connect Core §2: `sub` is locally unique and never reassigned; a UUID that is never editable and
    # never reused keeps tokens pointing at one person even if the username is changed or recycled.
    subject = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="subject identifier")
    email = models.EmailField("email address", blank=True)
    roles = models.ManyToManyField(Role, blank=True, related_name="users")

    objects = CaseInsensitiveUserManager()

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="accounts_user_username_ci_unique",
                violation_error_message="A user with that username already exists.",
            ),
            models.UniqueConstraint(
                Lower("email"),
                condition=~Q(email=""),
                name="accounts_user_email_ci_unique",
                violation_error_message="A user with that email address already exists.",
            ),
        ]

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_subject = instance.__dict__.get("subject")
        return instance

    def save(self, *args, **kwargs) -> None:
        loaded = getattr(self, "_loaded_subject", None)
        if loaded is not None and self.subject != loaded:
            raise ValueError("A user's subject identifier never changes (OpenID Connect Core §2).")
        super().save(*args, **kwargs)
        self._loaded_subject = self.subject

    def role_names(self) -> list[str]:
        """The user's role names, sorted; reads the prefetched set when there is one."""
        return sorted(role.name for role in self.roles.all())
