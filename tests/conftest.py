"""Fixtures shared by every test: users, roles, an admin browser session."""

import pytest

from accounts.services import role_create, user_create

STRONG_PASSWORD = "correct-horse-battery-staple-42"

pytest_plugins = ["tests.browser_fixtures"]


@pytest.fixture(scope="session", autouse=True)
def _the_routes_gunicorn_serves():
    """Requests in tests take the route they take under gunicorn (idp/wsgi.py): the token, revocation,
    introspection and userinfo endpoints through the protocol middleware chain (idp/protocol_chain.py), every other
    path through settings.MIDDLEWARE. Django's test client and live server each build a plain handler; both are
    given the router instead, so every endpoint test exercises the chain production serves it with."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import client as test_client
    from django.test import testcases

    from idp.protocol_chain import ProtocolChainMixin, ProtocolRouter, protocol_paths

    class ProtocolClientHandler(ProtocolChainMixin, test_client.ClientHandler):
        pass

    class RoutedClientHandler(test_client.ClientHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.protocol = ProtocolClientHandler(*args, **kwargs)

        def __call__(self, environ):
            if environ.get("PATH_INFO") in protocol_paths():
                return self.protocol(environ)
            return super().__call__(environ)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_client, "ClientHandler", RoutedClientHandler)
        patch.setattr(testcases, "WSGIHandler", lambda: ProtocolRouter(WSGIHandler()))
        yield


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs `collectstatic`; tests render admin pages without it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _synchronous_audit(settings):
    # Tests read an event back right after the request that wrote it, so every event is written before its
    # response. Production batches routine ones (audit/writer.py); tests/audit/test_batched_writer.py turns it on.
    settings.IDP_AUDIT_BATCH_MS = 0


@pytest.fixture(autouse=True)
def _fresh_raised_alerts():
    # The detectors' memory of raised alerts lives for the whole process; each test starts without one.
    from audit.detectors import raised

    raised.clear()
    yield
    raised.clear()


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    # The signing-key cache lives for the whole process; each test sees only its own database's keys.
    from idp.keys import reset_key_cache

    reset_key_cache()
    yield
    reset_key_cache()


@pytest.fixture
def password() -> str:
    return STRONG_PASSWORD


@pytest.fixture
def make_user(db):
    def make(username="alice", password=STRONG_PASSWORD, roles=(), **extra):
        for name in roles:
            from accounts.models import Role

            Role.objects.get_or_create(name=name)
        return user_create(username=username, password=password, role_names=roles, **extra)

    return make


@pytest.fixture
def alice(make_user):
    """The everyday user of the browser tests (tests that need another alice define their own)."""
    return make_user(username="alice", email="alice@example.com")


@pytest.fixture
def admin_user(make_user):
    return make_user(username="root", email="root@example.com", is_superuser=True)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def role(db):
    return role_create(name="orders:write", description="Create and change orders")
