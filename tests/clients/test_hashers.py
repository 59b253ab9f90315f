"""The client secret hasher (clients/hashers.py): a keyed SHA-256 for IdP-generated 256-bit secrets."""

import hashlib
import hmac

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password

from clients.hashers import ClientSecretHasher

SECRET = "kq3V1mZcJm0Z8nW6yXv2sVQp1b8k0GZr9Hq2fJt7LwE"


def test_a_secret_verifies_against_its_hash_and_nothing_else_does():
    encoded = make_password(SECRET, hasher="client_secret_hmac_sha256")
    assert encoded.startswith("client_secret_hmac_sha256$")
    assert check_password(SECRET, encoded)
    for wrong in ("", SECRET[:-1], SECRET + "x", SECRET.upper(), "é" + SECRET):
        assert not check_password(wrong, encoded)


def test_the_stored_format_is_hmac_sha256_keyed_by_the_salt():
    # Secrets stored before hmac.digest replaced hmac.new must still verify: the same bytes, the same hex digest.
    salt = "Zx9Yw8Vu7Ts6Rq5P"
    stored = f"client_secret_hmac_sha256${salt}${hmac.new(salt.encode(), SECRET.encode(), hashlib.sha256).hexdigest()}"
    assert ClientSecretHasher().encode(SECRET, salt) == stored
    assert identify_hasher(stored).algorithm == "client_secret_hmac_sha256"
    assert check_password(SECRET, stored)


@pytest.mark.parametrize("stored", [
    "client_secret_hmac_sha256$salt$",
    "client_secret_hmac_sha256$salt$zz",
    "client_secret_hmac_sha256$salt$é" + "0" * 63,
])
def test_a_damaged_stored_hash_verifies_nothing_and_raises_nothing(stored):
    assert not ClientSecretHasher().verify(SECRET, stored)
