"""The Django side of a benchmark run: seeds users and clients and mints single-use codes and refresh tokens.

Started once per run by bench/load.py with the IdP's environment (the bench database and var/bench) and driven
over its standard input: one JSON command a line, one JSON answer a line on the file descriptor passed as its
first argument (standard output carries the audit events' log lines, as in the IdP).

Users and clients are created through the services the admin and the CLI use (accounts.services.user_create,
clients.services.client_create). Codes and refresh tokens are written in bulk with the rows the IdP itself writes
(oauth2_provider's Grant, AccessToken and RefreshToken, idp.models.GrantContext), because the phases that spend
them need thousands and minting each through HTTP would take longer than a code lives (60 s).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import time
import traceback
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIRECT_URI = "https://rp.example.com/callback"
USER_SCOPES = "openid profile email roles"
SERVICE_AUDIENCE = "https://orders.example.com"
CODE_VERIFIER = "bench-verifier-" + "v" * 50  # 65 characters: RFC 7636 §4.1 wants 43 to 128
ROLES = ("admin", "orders:write")


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2 S256: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def setup(*, users: int, password: str) -> dict:
    """Roles, `users` sign-in users plus one for the lockout demonstration, a service and a relying party."""
    from accounts.services import role_create, user_create
    from clients.services import client_create

    for role in ROLES:
        role_create(name=role, description="benchmark role")
    names = [f"bench-user-{index:03d}" for index in range(users)]
    for name in names:
        user_create(username=name, email=f"{name}@example.com", password=password, role_names=ROLES,
                    first_name="Bench")
    user_create(username="bench-lockout", email="bench-lockout@example.com", password=password)
    service = client_create(name="Bench service", client_type="confidential", grant_types=["client-credentials"],
                            allowed_scopes=["orders:read"], audiences=[SERVICE_AUDIENCE])
    relying_party = client_create(
        name="Bench relying party", client_type="confidential", grant_types=["authorization-code"],
        redirect_uris=[REDIRECT_URI], allowed_scopes=USER_SCOPES.split(), audiences=[SERVICE_AUDIENCE],
        skip_consent=True,
    )
    return {
        "users": names, "lockout_user": "bench-lockout",
        "service": {"client_id": service.client.client_id, "client_secret": service.client_secret},
        "relying_party": {"client_id": relying_party.client.client_id,
                          "client_secret": relying_party.client_secret},
        "redirect_uri": REDIRECT_URI, "code_verifier": CODE_VERIFIER, "service_audience": SERVICE_AUDIENCE,
    }


def _relying_party_and_users():
    from accounts.models import User
    from clients.models import Client

    client = Client.objects.get(name="Bench relying party")
    users = list(User.objects.filter(username__startswith="bench-user-").order_by("username"))
    return client, users


def mint_codes(*, count: int, path: str) -> dict:
    """`count` authorization codes with PKCE S256, as idp.validator.save_authorization_code stores them."""
    from django.db import transaction
    from django.utils import timezone
    from oauth2_provider.models import get_grant_model
    from oauth2_provider.settings import oauth2_settings

    from idp.models import GrantContext
    from idp.tokens import token_checksum

    grant_model = get_grant_model()
    client, users = _relying_party_and_users()
    now = timezone.now()
    expires = now + timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS)
    challenge, auth_time = code_challenge(CODE_VERIFIER), int(time.time())
    codes = [secrets.token_urlsafe(30) for _ in range(count)]
    grants, contexts = [], []
    for index, code in enumerate(codes):
        grants.append(grant_model(
            application=client, user=users[index % len(users)], code=code, expires=expires,
            redirect_uri=REDIRECT_URI, scope=USER_SCOPES, code_challenge=challenge, code_challenge_method="S256",
            nonce="", claims="{}",
        ))
        contexts.append(GrantContext(code_checksum=token_checksum(code), client=client, sid=secrets.token_hex(16),
                                     auth_time=auth_time))
    with transaction.atomic():
        grant_model.objects.bulk_create(grants, batch_size=2000)
        GrantContext.objects.bulk_create(contexts, batch_size=2000)
    Path(path).write_text("\n".join(codes) + "\n")
    return {"count": count, "expires": expires.isoformat()}


def mint_refresh_tokens(*, count: int, path: str) -> dict:
    """`count` live refresh tokens of the relying party, each the head of its own family, as a code exchange
    leaves them: an access-token row, the refresh-token row (checksum only) and the redeemed GrantContext."""
    from django.db import transaction
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model, set_token_value

    from idp.models import GrantContext
    from idp.tokens import token_checksum

    access_model, refresh_model = get_access_token_model(), get_refresh_token_model()
    client, users = _relying_party_and_users()
    now = timezone.now()
    raw = [secrets.token_urlsafe(32) for _ in range(count)]
    accesses = []
    for index in range(count):
        access = access_model(user=users[index % len(users)], scope=USER_SCOPES, expires=now + timedelta(minutes=5),
                              application=client)
        set_token_value(access, "bench-access-" + secrets.token_urlsafe(32))
        accesses.append(access)
    with transaction.atomic():
        access_model.objects.bulk_create(accesses, batch_size=2000)
        refreshes, contexts = [], []
        for access, token in zip(accesses, raw, strict=True):
            family = uuid.uuid4()
            refresh = refresh_model(user=access.user, application=client, access_token=access, token_family=family)
            set_token_value(refresh, token)
            refreshes.append(refresh)
            contexts.append(GrantContext(code_checksum=token_checksum(secrets.token_urlsafe(30)), client=client,
                                         sid=secrets.token_hex(16), auth_time=int(time.time()), redeemed_at=now,
                                         token_family=family, access_token_id=access.pk))
        refresh_model.objects.bulk_create(refreshes, batch_size=2000)
        GrantContext.objects.bulk_create(contexts, batch_size=2000)
    Path(path).write_text("\n".join(raw) + "\n")
    return {"count": count}


FILL_SQL = """
INSERT INTO oauth2_provider_accesstoken (token, token_checksum, expires, scope, created, updated, application_id,
                                         user_id, resource)
SELECT '', md5(i::text || %(salt)s) || md5((-i)::text || %(salt)s),
       now() - make_interval(secs => (i %% 3900) - 300), 'orders:read',
       now() - make_interval(secs => (i %% 3900)), now() - make_interval(secs => (i %% 3900)),
       %(client)s, NULL, '[]'::jsonb
FROM generate_series(1, %(n)s::bigint) AS i
"""


def fill_access_tokens(*, total: int) -> dict:
    """Add client-credentials access-token rows (bulk SQL; an hour of traffic, most expired, pruning not yet run)
    until the table holds `total` rows; then VACUUM ANALYZE it, as autovacuum would have by then."""
    from django.db import connection
    from oauth2_provider.models import get_access_token_model

    from clients.models import Client

    started = time.perf_counter()
    present = get_access_token_model().objects.count()
    client = Client.objects.get(name="Bench service")
    if total > present:
        with connection.cursor() as cursor:
            cursor.execute(FILL_SQL, {"n": total - present, "client": client.pk, "salt": secrets.token_hex(8)})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE oauth2_provider_accesstoken")
    rows = get_access_token_model().objects.count()
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def vacuum_analyze() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {}


def throttle_rows(*, username: str) -> dict:
    """The sign-in counters of this username (and of the IPs it failed from), as stored in PostgreSQL."""
    from accounts.models import LoginThrottle

    rows = LoginThrottle.objects.filter(username__in=[username.lower(), ""]).order_by("scope")
    return {"rows": [{"scope": row.scope, "username": row.username, "ip": row.ip, "failures": row.failures,
                      "locked_until": row.locked_until.isoformat() if row.locked_until else None} for row in rows]}


def profile(**options) -> dict:
    from bench import profiling

    return profiling.run(**options)


COMMANDS = {"setup": setup, "mint_codes": mint_codes, "mint_refresh_tokens": mint_refresh_tokens,
            "fill_access_tokens": fill_access_tokens, "vacuum_analyze": vacuum_analyze,
            "throttle_rows": throttle_rows, "profile": profile}


def main() -> None:
    answers = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
    import django

    django.setup()
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        command = json.loads(line)
        try:
            result = COMMANDS[command.pop("command")](**command)
            answers.write(json.dumps({"ok": True, "result": result}) + "\n")
        except Exception:  # noqa: BLE001 - the orchestrator reports it and stops the run
            answers.write(json.dumps({"ok": False, "error": traceback.format_exc()}) + "\n")


if __name__ == "__main__":
    main()
