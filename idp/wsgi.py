"""WSGI entry point: `gunicorn -c python:idp.gunicorn_conf idp.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
application = get_wsgi_application()

from idp.public_documents import PublicDocuments  # noqa: E402 - needs the settings that get_wsgi_application set up

application = PublicDocuments(application)
