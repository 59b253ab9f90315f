"""Authentication backend (being built: issue 4)."""

from django.contrib.auth.backends import ModelBackend


class IdpAuthenticationBackend(ModelBackend):
    pass
