"""Fixtures of the accounts tests."""

import pytest


@pytest.fixture
def browser(client, alice):
    """Django's test client, signed in as alice."""
    client.force_login(alice)
    return client
