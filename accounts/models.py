"""Users with an immutable subject identifier, and the roles they hold."""

from __future__ import annotations

import uuid

from django.conf import settings
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


class LoginThrottle(models.Model):
    """Failed sign-ins counted for one (username, IP) pair or for one IP; a lock is always temporary.

    Counting per (username, IP) means that someone guessing from elsewhere can slow their own attempts down but
    never lock the real user out of the places the user signs in from (accounts/throttling.py).
    """

    SCOPE_USER_IP = "user_ip"
    SCOPE_IP = "ip"
    SCOPES = [(SCOPE_USER_IP, "username from one IP"), (SCOPE_IP, "any username from one IP")]

    scope = models.CharField(max_length=8, choices=SCOPES)
    username = models.CharField(max_length=254, blank=True, help_text="Lower-cased, as typed; blank for IP scope.")
    ip = models.GenericIPAddressField()
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField()
    last_failure_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "sign-in lockout"
        constraints = [
            models.UniqueConstraint(fields=["scope", "username", "ip"], name="accounts_loginthrottle_unique"),
        ]
        indexes = [models.Index(fields=["locked_until"], name="accounts_throttle_locked")]

    def __str__(self) -> str:
        who = f"{self.username} from {self.ip}" if self.scope == self.SCOPE_USER_IP else f"any user from {self.ip}"
        return f"{who}: {self.failures} failures"


class UserSession(models.Model):
    """A browser session of a user, so the user (and administrators) can list and end sessions one by one."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="sessions")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["user", "last_seen_at"], name="accounts_session_user_seen")]

    def __str__(self) -> str:
        return f"session of {self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"


class Consent(models.Model):
    """The scopes a user approved for a client; asking again only for scopes outside this set."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="consents")
    client = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="consents"
    )
    scopes = models.JSONField(default=list, help_text="Sorted list of approved scope names.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "client"], name="accounts_consent_unique")]

    def __str__(self) -> str:
        return f"consent of {self.user_id} to {self.client_id}: {' '.join(self.scopes)}"
