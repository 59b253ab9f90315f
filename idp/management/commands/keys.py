"""`manage.py keys rotate` and `manage.py keys list`: signing-key lifecycle for operators and schedulers."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand

from idp.keys import RotationResult, rotation_summary, signing_key_list, signing_key_rotate

LIST_COLUMNS = ("KID", "ALG", "SIZE", "STATE", "CREATED", "ACTIVATED", "RETIRED")


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z" if moment else "-"


class Command(BaseCommand):
    help = "Manage the JWT signing keys. Only public key ids are ever printed."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser(
            "rotate",
            help="Promote the next key to active, retire the active one, publish a fresh next key and remove "
            "retired keys whose tokens have all expired. Safe to run on a schedule.",
        )
        actions.add_parser("list", help="Show every stored key: kid, algorithm, size, state and dates.")

    def handle(self, *args, action: str, **options):
        if action == "rotate":
            self._report(signing_key_rotate())
        else:
            self._list()

    def _report(self, result: RotationResult) -> None:
        for sentence in rotation_summary(result):
            self.stdout.write(sentence)

    def _list(self) -> None:
        keys = signing_key_list()
        if not keys:
            self.stdout.write("No signing keys. Run `python manage.py bootstrap` or `python manage.py keys rotate`.")
            return
        rows = [LIST_COLUMNS] + [
            (
                key.kid,
                key.algorithm,
                str(key.key_size),
                key.state,
                _when(key.created),
                _when(key.activated_at),
                _when(key.retired_at),
            )
            for key in keys
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(len(LIST_COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
