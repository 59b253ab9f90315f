"""gunicorn's settings for the IdP: `gunicorn -c python:idp.gunicorn_conf idp.wsgi` (options on the command line win).

Threaded workers, because every token request waits on PostgreSQL for a few round trips and a commit: while one
thread waits, another uses the core. They also keep client connections alive, which sync workers cannot, so a
gateway or a load balancer does not pay a TCP handshake per request. Set the number of processes with
WEB_CONCURRENCY or --workers: one per core. A second process on the same core only competes with the first for its
caches: on one core, 1 worker x 8 threads served refresh and code exchange 5-10 % faster than 2 x 4 (bench/README.md),
and no path slower. Each thread holds its own database connection, so a process needs `threads` connections (see
README, Production).
"""

import gc

worker_class = "gthread"
threads = 8  # enough to keep the core busy while the others wait on PostgreSQL
keepalive = 5  # seconds an idle client connection stays open
worker_tmp_dir = "/dev/shm"  # noqa: S108 - the workers' heartbeat files, in memory as gunicorn's documentation advises
timeout = 60
graceful_timeout = 10


def post_worker_init(worker) -> None:
    """Freeze what the worker has loaded (Django, the URLconf, the models: about 95,000 objects) out of the cyclic
    garbage collector's reach. They live as long as the worker, yet every full collection walked them again, about
    20 ms with the GIL held, during which none of the worker's threads answered."""
    gc.freeze()
