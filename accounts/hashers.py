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
    """Argon2id at OWASP's minimum, in its 7 MiB form: m=7168 KiB, t=5, p=1.

    Why these numbers: OWASP's Password Storage Cheat Sheet gives five minimums for Argon2id with one lane, equal in
    the defence they give: (m KiB, t) = (47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5). They are the same
    work for an attacker whichever is chosen; for the IdP they are not the same cost. Measured on the benchmark machine
    (bench/README.md): one verification takes about 14 ms at 7 MiB and 17 ms at 19 MiB; with two worker processes
    hashing on one core, 16 ms against 20 ms, because two 7 MiB blocks stay in the processor's cache where two
    19 MiB blocks do not; and the benchmark's login capacity rose from 33 to 36-44 a second. At 46 MiB each hash also
    maps and faults in fresh memory (51 ms). Less memory per hash also means less memory for a login flood to claim.
    Django's default (m=100 MiB, p=8) costs about 150 ms on both cores and would let a burst of logins starve the
    token endpoint. The algorithm name stays "argon2", so hashes made with other parameters (the 19 MiB form
    included) are re-hashed at the next login (Django's must_update compares the parameters).

    A process hashes on IDP_PASSWORD_HASH_CONCURRENCY threads of its own (default 1; gunicorn runs about one
    process per core), and the request threads wait for them. argon2 releases the GIL, so otherwise every thread of
    a threaded worker would hash at once on the same core: each hash would need its memory at the same time (a
    memory lever for a login flood), and each thread's malloc arena would keep that memory afterwards. On the
    hashing threads only their arenas ever hold it.
    """

    time_cost = 5
    memory_cost = 7 * 1024  # KiB
    parallelism = 1

    def encode(self, password, salt):
        return _hashing_pool().submit(super().encode, password, salt).result()

    def verify(self, password, encoded):
        return _hashing_pool().submit(super().verify, password, encoded).result()
