"""`manage.py user create ...` and `manage.py user set-roles USERNAME NAME...`."""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import user_get_by_username
from accounts.services import user_create, user_set_roles
from accounts.validation import one_line


class Command(BaseCommand):
    help = "Manage users. Passwords are read from standard input, never from the command line."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Create a user.")
        create.add_argument("username")
        create.add_argument("--email", default="")
        create.add_argument("--role", action="append", default=[], dest="roles", metavar="NAME")
        create.add_argument("--staff", action="store_true")
        create.add_argument("--superuser", action="store_true")
        create.add_argument(
            "--password-stdin", action="store_true", help="Read the password from standard input (one line)."
        )
        set_roles = actions.add_parser("set-roles", help="Replace a user's roles.")
        set_roles.add_argument("username")
        set_roles.add_argument("role_names", nargs="*", metavar="NAME")

    def handle(self, *args, action: str, **options):
        try:
            if action == "create":
                self._create(options)
            else:
                user = user_get_by_username(username=options["username"])
                user_set_roles(user=user, role_names=options["role_names"])
                self.stdout.write(f"{user.username} now has roles: {', '.join(user.role_names()) or '(none)'}.")
        except ValidationError as error:
            raise CommandError(one_line(error)) from None

    def _create(self, options) -> None:
        password = None
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin was given but standard input held no password.")
        user = user_create(
            username=options["username"],
            email=options["email"],
            password=password,
            role_names=options["roles"],
            is_staff=options["staff"],
            is_superuser=options["superuser"],
        )
        self.stdout.write(f"Created user {user.username} (sub {user.subject}).")
