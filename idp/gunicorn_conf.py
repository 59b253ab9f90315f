"""gunicorn's settings for the IdP: `gunicorn -c python:idp.gunicorn_conf idp.wsgi` (options on the command line win).

Threaded workers, because every token request waits on PostgreSQL for a few round trips and a commit: while one
thread waits, another uses the core. They also keep client connections alive, which sync workers cannot, so a
gateway or a load balancer does not pay a TCP handshake per request. Set the number of processes with
WEB_CONCURRENCY or --workers (about one per core); each thread holds its own database connection, so a process needs
`threads` connections (see README, Production).
"""

import gc

worker_class = "gthread"
threads = 4
keepalive = 5  # seconds an idle client connection stays open
worker_tmp_dir = "/dev/shm"  # noqa: S108 - the workers' heartbeat files, in memory as gunicorn's documentation advises
timeout = 60
graceful_timeout = 10


def post_worker_init(worker) -> None:
    """Freeze what the worker has loaded (Django, the URLconf, the models: about 95,000 objects) out of the cyclic
    garbage collector's reach. They live as long as the worker, yet every full collection walked them again, about
    20 ms with the GIL held, during which none of the worker's threads answered."""
    gc.freeze()
