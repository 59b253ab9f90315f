"""Signing keys: encrypted at rest, named by their RFC 7638 thumbprint, rotated safely, cached once per process."""

import base64
import hashlib
import io
import json
import threading
from datetime import timedelta

import jwt
import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.utils import timezone
from jwcrypto.jwk import JWK

from idp import keys
from idp.keys import (
    NoActiveSigningKey,
    SigningKeyUnreadable,
    active_signing_key,
    jwks_document,
    next_key_lead_time,
    published_signing_keys,
    reset_key_cache,
    retired_key_retention,
    signing_key_by_kid,
    signing_key_create,
    signing_key_ensure,
    signing_key_rotate,
)
from idp.models import SigningKey

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


@pytest.fixture
def clock(monkeypatch):
    """The cache's monotonic clock, moved by hand."""

    class Clock:
        now = 1_000.0

        def advance(self, seconds):
            self.now += seconds

    fake = Clock()
    monkeypatch.setattr(keys, "_monotonic", lambda: fake.now)
    return fake


@pytest.fixture
def parse_count(monkeypatch):
    """How many times a stored key was decrypted and parsed, by kid."""
    counts = {}
    real = keys._load_private_key

    def counting(**kwargs):
        counts[kwargs["kid"]] = counts.get(kwargs["kid"], 0) + 1
        return real(**kwargs)

    monkeypatch.setattr(keys, "_load_private_key", counting)
    return counts


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(required_members: dict) -> str:
    """RFC 7638 §3: SHA-256 of the required members as JSON, sorted, without whitespace."""
    canonical = json.dumps(required_members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


def required_members(public_key) -> dict:
    """RFC 7638 §3.2 required members computed straight from the key's numbers (RFC 7518 §6.2.1, §6.3.1)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "kty": "RSA",
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        }
    numbers = public_key.public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big"))}


def sign(key, **claims):
    return jwt.encode({"sub": "alice", **claims}, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})


def verify_with_published_jwks(token):
    """What a resource server does: pick the key by kid from the JWKS and check the signature."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk_set = jwt.PyJWKSet.from_dict(jwks_document())
    match = [jwk for jwk in jwk_set.keys if jwk.key_id == kid]
    assert match, f"kid {kid} is not published"
    return jwt.decode(token, match[0].key, algorithms=[match[0].algorithm_name])


def states():
    return {key.kid: key.state for key in SigningKey.objects.all()}


def test_the_thumbprint_helper_matches_the_rfc7638_example():
    # RFC 7638 §3.1.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknj"
        "hMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6"
        "qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awa"
        "pJzKnqDKgw"
    )
    assert thumbprint({"e": "AQAB", "kty": "RSA", "n": n}) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.django_db
def test_the_private_key_is_encrypted_at_rest_and_decrypts_only_with_the_key_encryption_key(settings):
    key = signing_key_create(state=SigningKey.State.ACTIVE)
    stored = bytes(SigningKey.objects.get(pk=key.pk).private_key_encrypted)

    assert b"PRIVATE KEY" not in stored and b"BEGIN" not in stored
    assert Fernet(settings.IDP_KEY_ENCRYPTION_KEY).decrypt(stored).startswith(b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(stored)


@pytest.mark.django_db
def test_a_wrong_key_encryption_key_fails_loudly_naming_the_setting_and_the_key(settings):
    key = signing_key_create(state=SigningKey.State.ACTIVE)
    reset_key_cache()
    settings.IDP_KEY_ENCRYPTION_KEY = Fernet.generate_key().decode()

    with pytest.raises(SigningKeyUnreadable) as error:
        active_signing_key()

    message = str(error.value)
    assert "IDP_KEY_ENCRYPTION_KEY" in message and key.kid in message
    assert isinstance(error.value, ImproperlyConfigured)
    assert "PRIVATE" not in message and settings.IDP_KEY_ENCRYPTION_KEY not in message


@pytest.mark.django_db
def test_a_private_key_swapped_into_another_row_is_refused():
    first = signing_key_create(state=SigningKey.State.ACTIVE)
    second = signing_key_create(state=SigningKey.State.NEXT)
    SigningKey.objects.filter(pk=first.pk).update(private_key_encrypted=second.private_key_encrypted)
    reset_key_cache()

    with pytest.raises(SigningKeyUnreadable, match="does not match its key id"):
        active_signing_key()


@pytest.mark.django_db
@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_the_kid_is_the_rfc7638_thumbprint_of_the_public_key(algorithm):
    key = signing_key_create(state=SigningKey.State.ACTIVE, algorithm=algorithm)
    loaded = active_signing_key()

    independent = thumbprint(required_members(loaded.private_key.public_key()))
    assert key.kid == loaded.kid == independent
    assert JWK(**key.public_jwk).thumbprint() == independent
    assert key.public_jwk["kid"] == key.kid


@pytest.mark.django_db
def test_rsa_keys_have_at_least_2048_bits_and_the_standard_public_exponent(settings):
    default = signing_key_create(state=SigningKey.State.ACTIVE)
    settings.IDP_RSA_KEY_BITS = 3072
    larger = signing_key_create(state=SigningKey.State.NEXT)

    assert (default.algorithm, default.key_size) == ("RS256", 2048)
    assert larger.key_size == 3072
    for loaded in published_signing_keys():
        assert isinstance(loaded.private_key, rsa.RSAPrivateKey)
        assert loaded.private_key.key_size >= 2048
        assert loaded.public_key.public_numbers().e == 65537


@pytest.mark.django_db
def test_rsa_keys_below_2048_bits_are_refused_and_nothing_is_stored(settings):
    settings.IDP_RSA_KEY_BITS = 1024
    with pytest.raises(ImproperlyConfigured, match="at least 2048"):
        signing_key_create(state=SigningKey.State.ACTIVE)
    assert not SigningKey.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("algorithm", ["HS256", "none", "RS384"])
def test_symmetric_none_and_unknown_algorithms_are_refused(algorithm):
    with pytest.raises(ImproperlyConfigured, match="RS256 or ES256"):
        signing_key_create(state=SigningKey.State.ACTIVE, algorithm=algorithm)
    assert not SigningKey.objects.exists()


@pytest.mark.django_db
def test_es256_is_selected_by_the_setting_and_signs_verifiable_tokens(settings):
    settings.IDP_SIGNING_ALGORITHM = "ES256"
    signing_key_ensure()
    key = active_signing_key()

    assert key.algorithm == "ES256"
    assert isinstance(key.private_key, ec.EllipticCurvePrivateKey) and isinstance(key.private_key.curve, ec.SECP256R1)
    assert SigningKey.objects.get(kid=key.kid).key_size == 256
    assert dict(key.public_jwk) == {"kty": "EC", "use": "sig", "alg": "ES256", "kid": key.kid,
                                    **{name: value for name, value in required_members(key.public_key).items()
                                       if name != "kty"}}
    assert verify_with_published_jwks(sign(key))["sub"] == "alice"


@pytest.mark.django_db
def test_the_public_jwk_names_its_use_and_algorithm_and_has_no_private_members():
    key = signing_key_create(state=SigningKey.State.ACTIVE)
    assert key.public_jwk["use"] == "sig" and key.public_jwk["alg"] == "RS256" and key.public_jwk["kty"] == "RSA"
    assert {"n", "e"} <= set(key.public_jwk)
    assert not PRIVATE_MEMBERS & set(key.public_jwk)


@pytest.mark.django_db
def test_string_forms_show_the_kid_algorithm_and_state_only():
    key = signing_key_create(state=SigningKey.State.ACTIVE)
    loaded = active_signing_key()

    assert str(key) == f"{key.kid} (RS256, active)"
    assert "private" not in repr(loaded).lower() and "public_jwk" not in repr(loaded)
    assert loaded.kid in repr(loaded)


@pytest.mark.django_db
def test_the_database_allows_one_active_key_only():
    signing_key_create(state=SigningKey.State.ACTIVE)
    with pytest.raises(IntegrityError):
        signing_key_create(state=SigningKey.State.ACTIVE)
    assert SigningKey.objects.filter(state=SigningKey.State.ACTIVE).count() == 1


@pytest.mark.django_db
def test_active_signing_key_without_keys_says_how_to_create_one():
    with pytest.raises(NoActiveSigningKey) as error:
        active_signing_key()
    assert isinstance(error.value, ImproperlyConfigured)
    assert "python manage.py keys rotate" in str(error.value) and "python manage.py bootstrap" in str(error.value)


@pytest.mark.django_db
def test_ensure_creates_an_active_and_a_next_key_once():
    assert signing_key_ensure() is True
    first = states()
    assert sorted(first.values()) == ["active", "next"]
    assert active_signing_key().kid == next(kid for kid, state in first.items() if state == "active")

    assert signing_key_ensure() is False
    assert states() == first


@pytest.mark.django_db
def test_ensure_publishes_a_missing_next_key_without_touching_the_active_one():
    active = signing_key_create(state=SigningKey.State.ACTIVE)
    assert signing_key_ensure() is True
    assert states()[active.kid] == "active"
    assert sorted(states().values()) == ["active", "next"]


@pytest.mark.django_db
def test_rotate_promotes_next_retires_active_and_publishes_a_fresh_next_key():
    signing_key_ensure()
    old_active, old_next = active_signing_key().kid, SigningKey.objects.get(state="next").kid
    now = timezone.now() + next_key_lead_time()

    result = signing_key_rotate(now=now)

    assert (result.promoted, result.retired, result.removed, result.deferred_until) == (old_next, old_active, (), None)
    assert result.retired_until == now + retired_key_retention()
    assert states() == {old_active: "retired", old_next: "active", result.created_next: "next"}
    promoted = SigningKey.objects.get(kid=old_next)
    retired = SigningKey.objects.get(kid=old_active)
    assert promoted.activated_at == now and retired.retired_at == now
    assert active_signing_key().kid == old_next  # this process sees its own rotation at once
    assert [key.kid for key in published_signing_keys()] == [old_next, result.created_next, old_active]


@pytest.mark.django_db
def test_a_retired_key_stays_published_until_its_tokens_have_expired_then_is_removed():
    signing_key_ensure()
    first = active_signing_key()
    token = sign(first, exp=timezone.now() + timedelta(hours=1))
    retired_at = timezone.now() + next_key_lead_time()
    signing_key_rotate(now=retired_at)
    second = signing_key_rotate(now=retired_at + next_key_lead_time())
    assert signing_key_by_kid(first.kid).state == "retired"
    assert verify_with_published_jwks(token)["sub"] == "alice"

    almost = signing_key_rotate(now=retired_at + retired_key_retention() - timedelta(seconds=1))
    assert first.kid not in almost.removed and signing_key_by_kid(first.kid) is not None

    removal = signing_key_rotate(now=retired_at + retired_key_retention())
    assert removal.removed == (first.kid,)
    assert first.kid not in states() and signing_key_by_kid(first.kid) is None
    assert first.kid not in {jwk["kid"] for jwk in jwks_document()["keys"]}
    assert second.retired in states()  # retired later, so still within its own retention


def test_retention_covers_the_longest_token_clock_leeway_and_cache_lifetimes(settings):
    settings.IDP_ACCESS_TOKEN_MAX_LIFETIME = 1800
    settings.IDP_ID_TOKEN_LIFETIME = 600
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ACCESS_TOKEN_EXPIRE_SECONDS": 2400}
    settings.IDP_JWKS_MAX_AGE, settings.IDP_KEY_CACHE_SECONDS, settings.IDP_CLOCK_LEEWAY = 300, 5, 30
    assert retired_key_retention() == timedelta(seconds=2400 + 300 + 5 + 30)
    assert next_key_lead_time() == timedelta(seconds=305)


@pytest.mark.django_db
def test_rotating_twice_in_a_row_keeps_one_active_key_and_old_tokens_verify():
    signing_key_ensure()
    old = active_signing_key()
    token = sign(old)
    now = timezone.now() + next_key_lead_time()

    first = signing_key_rotate(now=now)
    second = signing_key_rotate(now=now)

    assert second.promoted is None and second.retired is None and second.created_next is None
    assert second.deferred_until == now + next_key_lead_time()  # the fresh next key is not yet known everywhere
    assert list(states().values()).count("active") == 1
    assert active_signing_key().kid == first.promoted
    assert verify_with_published_jwks(token)["sub"] == "alice"
    assert verify_with_published_jwks(sign(active_signing_key()))["sub"] == "alice"


@pytest.mark.django_db
def test_rotating_on_a_schedule_never_leaves_a_token_unverifiable():
    signing_key_ensure()
    now = timezone.now()
    tokens = []
    for step in range(1, 5):
        tokens.append(sign(active_signing_key()))
        now += next_key_lead_time()
        result = signing_key_rotate(now=now)
        assert result.promoted and result.created_next
        assert list(states().values()).count("active") == 1
        for token in tokens:  # within retention every token ever signed still verifies
            verify_with_published_jwks(token)
        assert len(states()) == step + 2


@pytest.mark.django_db
def test_rotate_without_a_next_key_publishes_one_and_waits_before_it_signs():
    active = signing_key_create(state=SigningKey.State.ACTIVE)
    result = signing_key_rotate()

    assert result.promoted is None and result.created_next
    assert result.deferred_until == SigningKey.objects.get(kid=result.created_next).created + next_key_lead_time()
    assert states() == {active.kid: "active", result.created_next: "next"}


@pytest.mark.django_db
def test_rotate_on_an_empty_database_activates_a_key_at_once():
    result = signing_key_rotate()
    assert result.promoted and result.created_next and result.retired is None
    assert states() == {result.promoted: "active", result.created_next: "next"}
    assert active_signing_key().kid == result.promoted


@pytest.mark.django_db
def test_steady_state_reads_do_no_database_query(django_assert_num_queries):
    signing_key_ensure()
    active_signing_key()
    with django_assert_num_queries(0):
        active_signing_key()
        published_signing_keys()
        signing_key_by_kid("unknown-kid")
        jwks_document()


@pytest.mark.django_db
def test_the_cache_re_lists_keys_with_one_query_after_its_interval(clock, settings, django_assert_num_queries):
    signing_key_ensure()
    active_signing_key()
    clock.advance(settings.IDP_KEY_CACHE_SECONDS - 0.5)
    with django_assert_num_queries(0):
        active_signing_key()
    clock.advance(1)
    with django_assert_num_queries(1):
        active_signing_key()


@pytest.mark.django_db
def test_each_key_is_parsed_once_per_process(clock, settings, parse_count):
    signing_key_ensure()
    for _ in range(3):
        active_signing_key()
        published_signing_keys()
        clock.advance(settings.IDP_KEY_CACHE_SECONDS + 1)
    assert sorted(parse_count.values()) == [1, 1]

    result = signing_key_rotate(now=timezone.now() + next_key_lead_time())
    published_signing_keys()
    assert parse_count == {**{kid: 1 for kid in parse_count}, result.created_next: 1}


@pytest.mark.django_db
def test_a_rotation_by_another_process_is_picked_up_after_the_cache_interval(clock, settings, monkeypatch, parse_count):
    signing_key_ensure()
    before = active_signing_key().kid
    # Another process rotates: this process's cache is not told.
    monkeypatch.setattr(keys, "_expire_key_cache_now_and_on_commit", lambda: None)
    result = signing_key_rotate(now=timezone.now() + next_key_lead_time())

    clock.advance(settings.IDP_KEY_CACHE_SECONDS - 1)
    assert active_signing_key().kid == before
    assert signing_key_by_kid(result.created_next) is None

    clock.advance(2)
    assert active_signing_key().kid == result.promoted
    assert signing_key_by_kid(before).state == "retired"
    assert signing_key_by_kid(result.created_next).state == "next"
    assert parse_count[result.created_next] == 1 and parse_count[before] == 1 and parse_count[result.promoted] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_threads_on_a_cold_cache_parse_each_key_once(parse_count):
    signing_key_ensure()
    reset_key_cache()
    barrier = threading.Barrier(8)
    seen, errors = [], []

    def read():
        try:
            barrier.wait()
            seen.append(active_signing_key().kid)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert len(set(seen)) == 1 and len(seen) == 8
    assert sorted(parse_count.values()) == [1, 1]


@pytest.mark.django_db
def test_the_jwcrypto_form_of_the_active_key_is_built_once_and_matches_the_kid():
    signing_key_ensure()
    key = active_signing_key()
    assert key.jwk is key.jwk
    assert key.jwk.thumbprint() == key.kid and key.jwk.has_private


@pytest.mark.django_db
def test_keys_list_prints_a_table_without_private_material():
    signing_key_ensure()
    signing_key_rotate(now=timezone.now() + next_key_lead_time())
    out = io.StringIO()
    call_command("keys", "list", stdout=out)
    text = out.getvalue()

    header, *rows = text.splitlines()
    assert header.split() == ["KID", "ALG", "SIZE", "STATE", "CREATED", "ACTIVATED", "RETIRED"]
    assert len(rows) == 3
    for key in SigningKey.objects.all():
        assert key.kid in text
        assert bytes(key.private_key_encrypted).decode()[:40] not in text
        assert key.public_jwk["n"][:40] not in text
    assert "PRIVATE" not in text and "BEGIN" not in text
    assert {row.split()[3] for row in rows} == {"active", "next", "retired"}


@pytest.mark.django_db
def test_keys_list_on_an_empty_database_says_how_to_create_keys():
    out = io.StringIO()
    call_command("keys", "list", stdout=out)
    assert "python manage.py bootstrap" in out.getvalue()


@pytest.mark.django_db
def test_keys_rotate_reports_what_it_did(monkeypatch):
    signing_key_ensure()
    old_active, old_next = active_signing_key().kid, SigningKey.objects.get(state="next").kid
    SigningKey.objects.update(created=timezone.now() - next_key_lead_time())
    out = io.StringIO()
    call_command("keys", "rotate", stdout=out)
    text = out.getvalue()
    new_next = SigningKey.objects.get(state="next").kid

    assert f"Promoted {old_next} to active" in text
    assert f"Retired {old_active}" in text
    assert f"Created next key {new_next}" in text

    again = io.StringIO()
    call_command("keys", "rotate", stdout=again)
    assert "Did not promote the next key yet" in again.getvalue()
    assert states()[new_next] == "next"


@pytest.mark.django_db
def test_bootstrap_creates_signing_keys_once_and_reports_their_kids(admin_user):
    out, err = io.StringIO(), io.StringIO()
    call_command("bootstrap", stdout=out, stderr=err)
    active, next_key = SigningKey.objects.get(state="active"), SigningKey.objects.get(state="next")
    assert err.getvalue().strip() == f"Created signing keys: active {active.kid}, next {next_key.kid}."
    assert out.getvalue() == ""

    again = io.StringIO()
    call_command("bootstrap", stdout=io.StringIO(), stderr=again)
    assert again.getvalue() == ""
    assert SigningKey.objects.count() == 2
