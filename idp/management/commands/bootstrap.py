"""`manage.py bootstrap`: first-run set-up, safe to repeat: signing keys, the first-party client, an administrator."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from accounts.services import user_create
from idp.api.services import first_party_client_ensure
from idp.keys import signing_key_ensure, signing_key_list


class Command(BaseCommand):
    help = (
        "Create what a new IdP needs to serve: an active and a next signing key when none is active, the "
        "first-party client of the cookie token API, and a bootstrap administrator when no superuser exists."
    )

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")

    def handle(self, *args, admin_username: str, **options):
        self._ensure_signing_keys()
        first_party_client_ensure()  # silent (audited as client.created): stdout carries only the password
        if User.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(18)
        user = user_create(username=admin_username, password=password, is_superuser=True)
        self.stdout.write(
            self.style.WARNING(
                f"Created the bootstrap administrator {user.username!r} with the one-time password\n\n"
                f"    {password}\n\n"
                f"It is shown only this once. Sign in at {settings.IDP_ISSUER}/admin/ and change it."
            )
        )

    def _ensure_signing_keys(self) -> None:
        if not signing_key_ensure():
            return
        kids = {key.state: key.kid for key in signing_key_list()}  # one active and one next key at most
        # A progress note, so it goes to stderr: stdout carries only the one-time password, for scripts to read.
        self.stderr.write(
            f"Created signing keys: active {kids['active']}, next {kids['next']}.", style_func=self.style.SUCCESS
        )
