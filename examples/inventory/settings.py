"""Settings of the inventory service (`DJANGO_SETTINGS_MODULE=examples.inventory.settings`)."""

from examples.service_settings import *  # noqa: F403
from examples.service_settings import INVENTORY_AUDIENCE, resource_server

ROOT_URLCONF = "examples.inventory.urls"
WSGI_APPLICATION = "examples.inventory.wsgi.application"
IDP_RESOURCE_SERVER = resource_server(INVENTORY_AUDIENCE, "inventory")
