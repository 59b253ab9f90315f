"""`manage.py tokens prune`: delete expired and revoked token rows; run it on a schedule (e.g. hourly)."""

from django.core.management.base import BaseCommand

from idp.pruning import tokens_prune


class Command(BaseCommand):
    help = "Maintain stored tokens."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser("prune", help="Delete expired and revoked tokens, codes and grant contexts.")

    def handle(self, *args, action: str, **options):
        removed = tokens_prune()
        self.stdout.write(", ".join(f"{count} {name}" for name, count in removed.items()) + " removed.")
