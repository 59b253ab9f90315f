"""The IdP's URLs plus views that fail on purpose, so the 403 and 500 pages are served through every middleware."""

from django.core.exceptions import PermissionDenied
from django.urls import path

from idp.urls import urlpatterns as idp_urlpatterns


def forbidden(request):
    raise PermissionDenied("internal detail that must not be shown")


def broken(request):
    raise RuntimeError("internal detail that must not be shown")


urlpatterns = [
    path("test-errors/forbidden/", forbidden),
    path("test-errors/broken/", broken),
    *idp_urlpatterns,
]
