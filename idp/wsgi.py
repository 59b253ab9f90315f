"""WSGI entry point: `gunicorn -c python:idp.gunicorn_conf idp.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
django_application = get_wsgi_application()

# Both need the settings that get_wsgi_application set up.
from idp.protocol_chain import ProtocolRouter  # noqa: E402
from idp.public_documents import PublicDocuments  # noqa: E402

application = PublicDocuments(ProtocolRouter(django_application))
