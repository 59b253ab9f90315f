"""gunicorn's settings for the IdP (idp/gunicorn_conf.py)."""

import gc

from idp import gunicorn_conf


def test_threaded_workers_keep_client_connections_alive():
    assert gunicorn_conf.worker_class == "gthread"
    assert gunicorn_conf.threads > 1
    assert gunicorn_conf.keepalive > 0


def test_a_started_worker_takes_what_it_loaded_out_of_the_collectors_reach():
    assert gc.get_freeze_count() == 0
    try:
        gunicorn_conf.post_worker_init(worker=None)
        # Everything loaded so far (Django, the URLconf, the models) is frozen: a full collection no longer walks it.
        assert gc.get_freeze_count() > 10_000
    finally:
        # Back to the collector, and collected now: garbage frozen with the rest (a test's closed HTTP sessions,
        # still holding keep-alive sockets to the live server) would otherwise wait for a rare full collection.
        gc.unfreeze()
        gc.collect()
