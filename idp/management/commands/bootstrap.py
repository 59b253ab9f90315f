"""`manage.py bootstrap`: first-run set-up that is safe to repeat (an administrator when none exists)."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from accounts.services import user_create


class Command(BaseCommand):
    help = "Create what a new IdP needs to serve: a bootstrap administrator when no superuser exists."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")

    def handle(self, *args, admin_username: str, **options):
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
