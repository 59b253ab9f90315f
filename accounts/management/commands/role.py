"""`manage.py role create NAME [--description TEXT]`."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import role_create
from accounts.validation import one_line


class Command(BaseCommand):
    help = "Manage roles."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Create a role.")
        create.add_argument("name")
        create.add_argument("--description", default="")

    def handle(self, *args, action: str, **options):
        try:
            role = role_create(name=options["name"], description=options["description"])
        except ValidationError as error:
            raise CommandError(one_line(error)) from None
        self.stdout.write(f"Created role {role.name}.")
