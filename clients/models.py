"""OAuth clients: django-oauth-toolkit's Application, swapped for one that knows audiences, lifetimes and roles."""

from __future__ import annotations

import ipaddress
import re
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from oauth2_provider.models import AbstractApplication, ApplicationManager

GRANT_AUTHORIZATION_CODE = AbstractApplication.GRANT_AUTHORIZATION_CODE
GRANT_CLIENT_CREDENTIALS = AbstractApplication.GRANT_CLIENT_CREDENTIALS
# RFC 8693 token exchange; what a client may exchange into is limited by its TokenExchangePolicy rows.
GRANT_TOKEN_EXCHANGE = "token-exchange"
# Implicit, hybrid and password grants are never offered (RFC 9700 §2.1.2, §2.4).
SUPPORTED_GRANTS = (GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE)

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
DEFAULT_ACCESS_TOKEN_LIFETIME = 300
DEFAULT_REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME = 14 * 24 * 3600


def _is_loopback_host(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri: str) -> str | None:
    """Why this URI may not be registered as a redirect URI, or None when it may.

    RFC 9700 §2.1 and §4.1.3: exact https URIs, or http on a loopback address for native apps (RFC 8252 §7.3);
    no wildcards, fragments or user information.
    """
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a malformed port)
    except ValueError:
        return f"{uri!r} is not a valid URI."
    if not parts.scheme or not host:
        return f"{uri!r} is not an absolute URI."
    if any(character.isspace() for character in uri):
        return f"{uri!r} contains whitespace; give each redirect URI separately."
    if "*" in uri:
        return f"{uri!r} contains a wildcard; redirect URIs are matched exactly."
    if parts.fragment or uri.endswith("#"):
        return f"{uri!r} has a fragment, which RFC 6749 §3.1.2 forbids."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return f"{uri!r} carries user information."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _is_loopback_host(host):
        return None
    if parts.scheme == "http":
        return f"{uri!r} uses http on a non-loopback host; use https."
    return f"{uri!r} uses the scheme {parts.scheme!r}; only https (or http on loopback) is allowed."


class ClientCacheGeneration(models.Model):
    """The one row whose value changes with every change to a client, its roles or a role's name.

    Each process keeps the clients it authenticated in memory (clients/cache.py) and trusts an entry only while
    this value is the one it was loaded under. A new value is written in the same transaction as the change, so the
    change and the end of every cached copy of it become visible to all processes and instances at the same moment.
    """

    ROW = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ROW, editable=False)
    # A random value rather than a counter: a restored or emptied table can never bring an old value back.
    value = models.CharField(max_length=32)

    class Meta:
        verbose_name = "client cache generation"

    def __str__(self) -> str:
        return f"client cache generation {self.value}"

    @classmethod
    def bump(cls, *, using: str | None = None) -> None:
        """Give the generation a new value (one upsert, in the caller's transaction when there is one)."""
        cls.objects.using(using or "default").bulk_create(
            [cls(id=cls.ROW, value=uuid.uuid4().hex)], update_conflicts=True, unique_fields=["id"],
            update_fields=["value"],
        )


class ClientQuerySet(models.QuerySet):
    def update(self, **kwargs) -> int:
        # A queryset update sends no post_save signal (clients/signals.py), so it moves the cache generation itself.
        with transaction.atomic(using=self.db):
            rows = super().update(**kwargs)
            ClientCacheGeneration.bump(using=self.db)
        return rows


class Client(AbstractApplication):
    grant_types = models.JSONField(
        default=list, help_text="Grants this client may use: authorization-code, client-credentials."
    )
    allowed_scopes = models.TextField(
        blank=True, help_text="Space-separated scopes the client may request, e.g. 'openid profile orders:read'."
    )
    audiences = models.JSONField(default=list, blank=True, help_text="Audiences its access tokens may carry.")
    default_audience = models.CharField(max_length=255, blank=True)
    access_token_lifetime = models.PositiveIntegerField(default=DEFAULT_ACCESS_TOKEN_LIFETIME, help_text="Seconds.")
    refresh_token_lifetime = models.PositiveIntegerField(
        default=DEFAULT_REFRESH_TOKEN_LIFETIME, help_text="Absolute lifetime of a refresh-token family, seconds."
    )
    refresh_token_idle_lifetime = models.PositiveIntegerField(
        default=DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME, help_text="Seconds a refresh token may sit unused."
    )
    enabled = models.BooleanField(default=True)
    roles = models.ManyToManyField(
        "accounts.Role", blank=True, related_name="clients", help_text="Roles carried by this client's own tokens."
    )
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    objects = ApplicationManager.from_queryset(ClientQuerySet)()

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "client"

    def __str__(self) -> str:
        return f"{self.name or 'client'} ({self.client_id})"

    def natural_key(self) -> tuple[str]:
        return (self.client_id,)

    # --- django-oauth-toolkit extension points -------------------------------------------------
    def allows_grant_type(self, *grant_types: str) -> bool:
        return any(grant in self.grant_types for grant in grant_types if grant in SUPPORTED_GRANTS)

    def is_usable(self, request) -> bool:
        return self.enabled

    def redirect_uri_allowed(self, uri: str) -> bool:
        # RFC 9700 §4.1.3: exact string comparison; no port flexibility, no prefix or path matching.
        return uri in self.redirect_uris.split()

    def post_logout_redirect_uri_allowed(self, uri: str) -> bool:
        return uri in self.post_logout_redirect_uris.split()

    def get_allowed_schemes(self) -> list[str]:
        # Registration already limits http to loopback hosts (redirect_uri_problem), so both schemes may be
        # redirected to here.
        return ["https", "http"]

    @property
    def scope_list(self) -> list[str]:
        return self.allowed_scopes.split()

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}

        def add(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        if not self.grant_types:
            add("grant_types", "Choose at least one grant type.")
        for grant in self.grant_types:
            if grant not in SUPPORTED_GRANTS:
                add("grant_types", f"{grant!r} is not offered; use authorization-code, client-credentials or "
                    "token-exchange.")
        if self.grant_types:
            self.authorization_grant_type = self.grant_types[0]
        redirect_uris = self.redirect_uris.split()
        # The IdP's own first-party client (idp/api/) signs in through the cookie API, never through /o/authorize/,
        # so it has no redirect URI; it holds the authorization-code grant only because DOT refreshes under it.
        is_first_party_api_client = self.client_id == settings.IDP_FIRST_PARTY_CLIENT_ID
        if GRANT_AUTHORIZATION_CODE in self.grant_types and not redirect_uris and not is_first_party_api_client:
            add("redirect_uris", "The authorization-code grant needs at least one redirect URI.")
        for field, uris in (("redirect_uris", redirect_uris), ("post_logout_redirect_uris",
                                                               self.post_logout_redirect_uris.split())):
            for uri in uris:
                problem = redirect_uri_problem(uri)
                if problem:
                    add(field, problem)
        if GRANT_CLIENT_CREDENTIALS in self.grant_types and self.client_type != self.CLIENT_CONFIDENTIAL:
            add("client_type", "Only confidential clients may use the client-credentials grant (RFC 6749 §4.4).")
        if GRANT_TOKEN_EXCHANGE in self.grant_types and self.client_type != self.CLIENT_CONFIDENTIAL:
            add("client_type", "Only confidential clients may exchange tokens (RFC 8693 §2.1).")
        for scope in self.scope_list:
            if not SCOPE_TOKEN.match(scope):
                add("allowed_scopes", f"{scope!r} is not a valid scope token (RFC 6749 §3.3).")
        if not isinstance(self.audiences, list) or not all(isinstance(a, str) and a for a in self.audiences):
            add("audiences", "Audiences are a list of non-empty strings.")
        elif self.default_audience and self.default_audience not in self.audiences:
            add("default_audience", "The default audience must be one of the allowed audiences.")
        cap = settings.IDP_ACCESS_TOKEN_MAX_LIFETIME
        if not 1 <= self.access_token_lifetime <= cap:
            add("access_token_lifetime", f"Access-token lifetime must be between 1 and {cap} seconds.")
        if self.refresh_token_idle_lifetime > self.refresh_token_lifetime:
            add("refresh_token_idle_lifetime", "The idle lifetime cannot exceed the absolute lifetime.")
        if self.algorithm not in (self.NO_ALGORITHM, self.RS256_ALGORITHM):
            add("algorithm", "ID tokens are signed with the IdP's keys, never with a shared secret.")
        if errors:
            raise ValidationError(errors)


class TokenExchangePolicy(models.Model):
    """Lets one client exchange access tokens addressed to one audience for tokens addressed to another.

    RFC 8693 leaves the policy to the authorization server; as in Keycloak, nothing is allowed unless an
    administrator allows it, one (client, subject audience, target audience) triple at a time.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="exchange_policies")
    subject_audience = models.CharField(
        max_length=255, help_text="The audience of the tokens this client presents, usually its own service."
    )
    target_audience = models.CharField(max_length=255, help_text="The audience of the tokens it may obtain.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "token-exchange policy"
        verbose_name_plural = "token-exchange policies"
        constraints = [
            models.UniqueConstraint(
                fields=["client", "subject_audience", "target_audience"], name="clients_exchange_policy_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.client_id}: {self.subject_audience} -> {self.target_audience}"
