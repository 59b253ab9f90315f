"""The live IdP's fixtures for the browser tests (the browser itself comes from tests/browser_fixtures.py)."""

from tests.flows.conftest import discovery, idp, jwks_client, make_client  # noqa: F401 - shared fixtures
