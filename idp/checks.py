"""System checks for dangerous configuration; ids are stable (idp.Wnnn / idp.Ennn).

The signing-key checks (idp.W001, idp.W002) read the database, so they are tagged `database`: Django runs them
only when databases are named, as in `manage.py check --database default` and during `manage.py migrate`. A plain
`manage.py check --deploy` (as CI runs it on a freshly migrated, not yet bootstrapped database) skips them.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, router
from django.utils import timezone

from idp.models import SigningKey

MAX_ACCESS_TOKEN_SECONDS = 3600


def _active_keys(databases) -> list[SigningKey] | None:
    """The active key on each database that holds signing keys; None when a database cannot answer yet."""
    found = []
    for alias in databases or ():
        if not router.allow_migrate_model(alias, SigningKey):
            continue
        try:
            keys = SigningKey.objects.using(alias).filter(state=SigningKey.State.ACTIVE)
            found.extend(keys.defer("private_key_encrypted"))
        except DatabaseError:  # not migrated yet (checks also run before `migrate`), or unreachable
            return None
    return found


@register(Tags.database)
def check_active_signing_key(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    if not databases:
        return []
    active = _active_keys(databases)
    if active is None or active:
        return []
    return [
        Warning(
            "No signing key is active, so the IdP cannot sign tokens.",
            hint="Run `python manage.py bootstrap` (first run) or `python manage.py keys rotate`; the JWKS "
            "(RFC 7517 §5) then publishes the key that signs and the one that will sign next.",
            id="idp.W001",
        )
    ]


@register(Tags.database)
def check_signing_key_age(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    if not databases:
        return []
    limit = timedelta(days=settings.IDP_KEY_ROTATION_DAYS)
    now = timezone.now()
    warnings = []
    for key in _active_keys(databases) or ():
        since = key.activated_at or key.created
        if now - since > limit:
            warnings.append(
                Warning(
                    f"The active signing key {key.kid} has signed since {since:%Y-%m-%d}, longer than "
                    f"IDP_KEY_ROTATION_DAYS ({settings.IDP_KEY_ROTATION_DAYS} days).",
                    hint="Run `python manage.py keys rotate` on a schedule: NIST SP 800-57 Part 1 §5.3 limits a "
                    "signing key's cryptoperiod, and the JWKS (RFC 7517) publishes the next key before it signs, "
                    "so rotation never breaks a token.",
                    obj=key,
                    id="idp.W002",
                )
            )
    return warnings


@register(Tags.security)
def check_access_token_lifetime(app_configs=None, **kwargs) -> list[Warning]:
    lifetimes = {
        "IDP_ACCESS_TOKEN_MAX_LIFETIME": settings.IDP_ACCESS_TOKEN_MAX_LIFETIME,
        'OAUTH2_PROVIDER["ACCESS_TOKEN_EXPIRE_SECONDS"]': settings.OAUTH2_PROVIDER.get("ACCESS_TOKEN_EXPIRE_SECONDS"),
    }
    too_long = [f"{name} = {value}" for name, value in lifetimes.items() if (value or 0) > MAX_ACCESS_TOKEN_SECONDS]
    if not too_long:
        return []
    return [
        Warning(
            f"Access tokens live longer than {MAX_ACCESS_TOKEN_SECONDS} seconds: {', '.join(too_long)}.",
            hint="A bearer JWT cannot be recalled once issued; keep access tokens short-lived (RFC 9068 §5, "
            "RFC 9700 §4.14) and let clients use refresh tokens.",
            id="idp.W003",
        )
    ]


@register(Tags.security, deploy=True)
def check_issuer_uses_https(app_configs=None, **kwargs) -> list[Warning]:
    if settings.IDP_ISSUER_IS_HTTPS or settings.IDP_ISSUER_IS_LOOPBACK:
        return []
    return [
        Warning(
            f"The issuer {settings.IDP_ISSUER} uses plain http on a non-loopback host.",
            hint="Serve the IdP over https and set IDP_ISSUER to its https URL: OpenID Connect Discovery 1.0 §3 "
            "requires an https issuer, and RFC 9700 §4 assumes TLS for every endpoint that carries tokens.",
            id="idp.W004",
        )
    ]


@register(Tags.security)
def check_refresh_token_reuse_protection(app_configs=None, **kwargs) -> list[Warning]:
    if settings.OAUTH2_PROVIDER.get("REFRESH_TOKEN_REUSE_PROTECTION") is True:
        return []
    return [
        Warning(
            'OAUTH2_PROVIDER["REFRESH_TOKEN_REUSE_PROTECTION"] is not True.',
            hint="Set it to True so a replayed refresh token revokes the whole token family (RFC 9700 §4.14.2).",
            id="idp.W005",
        )
    ]
