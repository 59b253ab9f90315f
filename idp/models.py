"""Signing keys for JWTs: published in JWKS as `next`, signing as `active`, published as `retired` until removed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class SigningKey(models.Model):
    """One asymmetric key pair; the private half is encrypted at rest with IDP_KEY_ENCRYPTION_KEY (Fernet)."""

    class State(models.TextChoices):
        NEXT = "next", "Next (published, not yet signing)"
        ACTIVE = "active", "Active (signing)"
        RETIRED = "retired", "Retired (published until every token it signed has expired)"

    class Algorithm(models.TextChoices):
        # RFC 9068 §2.1 / RFC 7518 §3.1: asymmetric algorithms only; never `none` or HS*.
        RS256 = "RS256", "RS256 (RSASSA-PKCS1-v1_5 with SHA-256)"
        ES256 = "ES256", "ES256 (ECDSA with P-256 and SHA-256)"

    # RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key: 43 characters, stable across restarts.
    kid = models.CharField("key id", max_length=64, unique=True, editable=False)
    algorithm = models.CharField(max_length=8, choices=Algorithm.choices, editable=False)
    key_size = models.PositiveIntegerField("key size (bits)", editable=False)
    state = models.CharField(max_length=8, choices=State.choices)
    # Fernet token of the PKCS#8 PEM private key; the plain key is never written to the database.
    private_key_encrypted = models.BinaryField(editable=False)
    public_jwk = models.JSONField("public JWK", editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"],
                condition=Q(state="active"),
                name="idp_signingkey_single_active",
                violation_error_message="Only one signing key can be active.",
            ),
            models.UniqueConstraint(
                fields=["state"],
                condition=Q(state="next"),
                name="idp_signingkey_single_next",
                violation_error_message="Only one signing key can be next.",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["next", "active", "retired"]),
                name="idp_signingkey_state_valid",
            ),
            # RFC 7518 §3.3: RSA keys of 2048 bits or more; §3.4: ES256 uses P-256.
            models.CheckConstraint(
                condition=Q(algorithm="RS256", key_size__gte=2048) | Q(algorithm="ES256", key_size=256),
                name="idp_signingkey_algorithm_size_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm}, {self.state})"


class GrantContext(models.Model):
    """What an authorization code carries besides DOT's Grant row, kept after redemption.

    The browser session's `auth_time` and `sid` go into the ID and access tokens issued from the code and from the
    refresh tokens that follow; the tokens issued at redemption are remembered so that a replayed code revokes
    them (RFC 6749 §4.1.2, RFC 9700 §4.2). Only the code's SHA-256 checksum is stored.
    """

    code_checksum = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE)
    sid = models.CharField(max_length=64, blank=True)
    auth_time = models.BigIntegerField(null=True)
    created = models.DateTimeField(auto_now_add=True)
    redeemed_at = models.DateTimeField(null=True)
    token_family = models.UUIDField(null=True, db_index=True)
    access_token_id = models.BigIntegerField(null=True)

    def __str__(self) -> str:
        return f"grant context {self.pk} for client {self.client_id}"
