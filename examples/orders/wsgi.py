"""WSGI entry point: `gunicorn examples.orders.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.orders.settings")
application = get_wsgi_application()
