"""Password hashing parameters."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class IdpArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's minimum: m=19 MiB, t=2, p=1.

    Why these numbers: OWASP's Password Storage Cheat Sheet lists m=19456 KiB, t=2, p=1 as the baseline for
    Argon2id. With p=1 one verification uses one core (about 27 ms here), so a two-core IdP still serves about
    30 logins per second per core while an attacker pays 19 MiB and two passes per guess. Django's default
    (m=100 MiB, p=8) costs about 150 ms on both cores and would let a burst of logins starve the token endpoint.
    The algorithm name stays "argon2", so hashes made with other parameters are re-hashed at the next login
    (Django's must_update compares the parameters).
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
