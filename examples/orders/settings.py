"""Settings of the orders service (`DJANGO_SETTINGS_MODULE=examples.orders.settings`)."""

import os

from examples.service_settings import *  # noqa: F403
from examples.service_settings import ORDERS_AUDIENCE, required_env, resource_server

ROOT_URLCONF = "examples.orders.urls"
WSGI_APPLICATION = "examples.orders.wsgi.application"
IDP_RESOURCE_SERVER = resource_server(ORDERS_AUDIENCE, "orders")

# Orders calls inventory as itself (client credentials) and on behalf of its caller (token exchange), both with its
# own confidential client at the IdP.
ORDERS_CLIENT_ID = required_env("ORDERS_CLIENT_ID")
ORDERS_CLIENT_SECRET = required_env("ORDERS_CLIENT_SECRET")
INVENTORY_URL = os.environ.get("INVENTORY_URL", "http://127.0.0.1:8102").rstrip("/")
UPSTREAM_TIMEOUT = 5
