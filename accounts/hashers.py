"""Password hashing parameters, and how many hashes one process computes at once."""

import threading
from functools import cache

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


@cache
def _hashing_slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(settings.IDP_PASSWORD_HASH_CONCURRENCY)


class IdpArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's minimum: m=19 MiB, t=2, p=1.

    Why these numbers: OWASP's Password Storage Cheat Sheet lists m=19456 KiB, t=2, p=1 as the baseline for
    Argon2id. With p=1 one verification uses one core (about 27 ms here), so a two-core IdP still serves about
    30 logins per second per core while an attacker pays 19 MiB and two passes per guess. Django's default
    (m=100 MiB, p=8) costs about 150 ms on both cores and would let a burst of logins starve the token endpoint.
    The algorithm name stays "argon2", so hashes made with other parameters are re-hashed at the next login
    (Django's must_update compares the parameters).

    A process hashes at most IDP_PASSWORD_HASH_CONCURRENCY passwords at once (default 1; gunicorn runs about one
    process per core). argon2 releases the GIL, so without the bound every thread of a threaded worker would hash
    at once on the same core: each hash then needs its 19 MiB at the same time (a memory-exhaustion lever for a
    login flood) and they evict each other from the CPU caches, which halved login throughput when measured.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1

    def encode(self, password, salt):
        with _hashing_slots():
            return super().encode(password, salt)

    def verify(self, password, encoded):
        with _hashing_slots():
            return super().verify(password, encoded)
