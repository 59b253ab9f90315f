"""Password hashing parameters, and where and how many hashes one process computes at once."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher

_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _hashing_pool() -> ThreadPoolExecutor:
    """This process's hashing threads, made at the first hash (a forked worker makes its own)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=settings.IDP_PASSWORD_HASH_CONCURRENCY,
                                                     thread_name_prefix="password-hash"))
        return _pool[1]


def hashing_pool_reset() -> None:
    """Forget the hashing threads (tests that change IDP_PASSWORD_HASH_CONCURRENCY); the next hash makes new ones."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool[1].shutdown(wait=True)
        _pool = None


class IdpArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's minimum: m=19 MiB, t=2, p=1.

    Why these numbers: OWASP's Password Storage Cheat Sheet lists m=19456 KiB, t=2, p=1 as the baseline for
    Argon2id. With p=1 one verification uses one core (about 27 ms here), so a two-core IdP still serves about
    30 logins per second per core while an attacker pays 19 MiB and two passes per guess. Django's default
    (m=100 MiB, p=8) costs about 150 ms on both cores and would let a burst of logins starve the token endpoint.
    The algorithm name stays "argon2", so hashes made with other parameters are re-hashed at the next login
    (Django's must_update compares the parameters).

    A process hashes on IDP_PASSWORD_HASH_CONCURRENCY threads of its own (default 1; gunicorn runs about one
    process per core), and the request threads wait for them. argon2 releases the GIL, so otherwise every thread of
    a threaded worker would hash at once on the same core: each hash would need its 19 MiB at the same time (a
    memory lever for a login flood), and each thread's malloc arena would keep its 19 MiB afterwards, which took a
    worker with 4 threads past 150 MiB. On the hashing threads only their arenas ever hold that memory.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1

    def encode(self, password, salt):
        return _hashing_pool().submit(super().encode, password, salt).result()

    def verify(self, password, encoded):
        return _hashing_pool().submit(super().verify, password, encoded).result()
