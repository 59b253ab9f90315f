"""`manage.py audit verify|prune`: check the event chain, and remove old events while keeping it verifiable."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.integrity import PRUNE_BATCH_SIZE, VERIFY_CHUNK_SIZE, chain_verify, events_prune

_AGE = re.compile(r"(\d{1,6})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# A century: anything longer is a typo, and would overflow the date arithmetic.
_MAX_AGE = timedelta(days=36_500)


def parse_age(text: str) -> timedelta:
    """`180d`, `12h` or `30m` as a timedelta; CommandError for anything else."""
    match = _AGE.fullmatch(text.strip())
    if not match:
        raise CommandError(f"--older-than takes a number and a unit, d, h or m (such as 180d), not {text!r}.")
    age = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if not timedelta(0) < age <= _MAX_AGE:
        raise CommandError(f"--older-than must be more than 0 and at most {_MAX_AGE.days}d, not {text!r}.")
    return age


def _positive(text: str) -> int:
    # ArgumentTypeError lets argparse name the option in its one-line error.
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, not {text!r}")
    return value


class Command(BaseCommand):
    help = "Verify the audit event chain, or prune old events and re-anchor the chain."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        verify = actions.add_parser(
            "verify",
            help="Recompute every event's hash and link; exit non-zero naming the first modified, inserted or "
            "deleted event.",
        )
        verify.add_argument("--chunk-size", type=_positive, default=VERIFY_CHUNK_SIZE, metavar="N",
                            help=f"Events read per query (default {VERIFY_CHUNK_SIZE}).")
        prune = actions.add_parser(
            "prune",
            help="Delete events older than an age, re-anchor the chain at the first event kept, and record an "
            "audit.pruned event.",
        )
        prune.add_argument("--older-than", required=True, metavar="AGE",
                           help="Age such as 180d, 12h or 30m. Ages under 1d are refused without --force.")
        prune.add_argument("--force", action="store_true",
                           help="Allow an age under 1d, or a prune across events that are already missing (the "
                           "audit.pruned event records how many).")
        prune.add_argument("--batch-size", type=_positive, default=PRUNE_BATCH_SIZE, metavar="N",
                           help=f"Events deleted per transaction (default {PRUNE_BATCH_SIZE}); writers wait for "
                           "one batch at most.")

    def handle(self, *args, action: str, **options):
        getattr(self, "_" + action)(options)

    def _verify(self, options) -> None:
        report = chain_verify(chunk_size=options["chunk_size"])
        if not report.intact:
            raise CommandError(report.summary())
        self.stdout.write(report.summary())

    def _prune(self, options) -> None:
        age = parse_age(options["older_than"])
        try:
            result = events_prune(older_than=age, force=options["force"], batch_size=options["batch_size"])
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            f"Pruned {result.count} audit events older than {result.cutoff.isoformat(timespec='seconds')}; "
            f"the chain now starts at #{result.anchor_seq}."
        )
