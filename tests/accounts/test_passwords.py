"""Argon2id at OWASP's minimum, and older hashes upgraded at login."""

import threading
import time

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.low_level import Type
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password

from accounts import hashers


@pytest.mark.django_db
def test_new_passwords_are_argon2id_with_at_least_owasp_minimum(make_user, password):
    user = make_user()
    algorithm, encoded = user.password.split("$", 1)
    assert algorithm == "argon2"
    params = extract_parameters("$" + encoded)
    assert params.type is Type.ID
    assert params.parallelism >= 1
    # OWASP's Password Storage Cheat Sheet: five equivalent minimums, (memory KiB, passes).
    owasp = [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)]
    assert any(params.memory_cost >= memory and params.time_cost >= passes for memory, passes in owasp)


@pytest.mark.django_db
@pytest.mark.parametrize("old_hasher", ["pbkdf2_sha256", "pbkdf2_sha1", "scrypt"])
def test_older_hashes_are_upgraded_to_argon2id_at_login(make_user, password, old_hasher):
    user = make_user()
    user.password = make_password(password, hasher=old_hasher)
    user.save()
    assert authenticate(username="alice", password=password) == user
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")


@pytest.mark.django_db
@pytest.mark.parametrize(("memory_cost", "time_cost"), [(8192, 1), (19456, 2)], ids=["weaker", "owasp-19-mib-form"])
def test_argon2_hashes_with_other_parameters_are_rehashed_at_login(make_user, password, memory_cost, time_cost):
    """Weaker hashes, and those of the 19 MiB form earlier releases used, become the current form at next login."""
    user = make_user()
    other = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1).hash(password)
    user.password = "argon2" + other
    user.save()
    assert authenticate(username="alice", password=password) == user
    user.refresh_from_db()
    assert "$argon2id$v=19$m=7168,t=5,p=1$" in user.password
    assert authenticate(username="alice", password=password) == user


@pytest.mark.django_db
def test_login_is_case_insensitive_for_the_username(make_user, password):
    user = make_user(username="Alice")
    assert authenticate(username="aLiCe", password=password) == user


def test_a_login_flood_never_hashes_more_passwords_at_once_than_allowed(monkeypatch, settings):
    """Threads of one worker queue for the hashing threads instead of each holding its memory at the same moment."""
    settings.IDP_PASSWORD_HASH_CONCURRENCY = 2
    hashers.hashing_pool_reset()
    running, most, hashed_on = 0, 0, set()
    lock = threading.Lock()
    original = PasswordHasher.verify

    def counting_verify(self, hash, password):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            hashed_on.add(threading.current_thread().name)
        time.sleep(0.02)  # long enough for every thread to be waiting at once
        try:
            return original(self, hash, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    encoded = make_password("correct horse battery staple")
    hasher = hashers.IdpArgon2PasswordHasher()
    results = []
    threads = [threading.Thread(target=lambda: results.append(hasher.verify("correct horse battery staple", encoded)))
               for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        hashers.hashing_pool_reset()
    assert results == [True] * 8
    assert most == 2
    assert len(hashed_on) == 2 and all(name.startswith("password-hash") for name in hashed_on)
