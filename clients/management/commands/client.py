"""`manage.py client create|list|rotate-secret|disable`: OAuth clients for operators' scripts."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clients.models import GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE, Client
from clients.selectors import client_get, client_list
from clients.services import (
    client_create,
    client_disable,
    client_rotate_secret,
    exchange_policy_allow,
    exchange_policy_revoke,
)

GRANT_CHOICES = [GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE]


class Command(BaseCommand):
    help = "Manage OAuth clients. A generated secret is printed once and never stored in the clear."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Register a client.")
        create.add_argument("--name", required=True)
        create.add_argument("--type", required=True, choices=[Client.CLIENT_CONFIDENTIAL, Client.CLIENT_PUBLIC])
        create.add_argument("--grant", action="append", required=True, choices=GRANT_CHOICES, dest="grants")
        create.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris", metavar="URI")
        create.add_argument("--post-logout-redirect-uri", action="append", default=[],
                            dest="post_logout_redirect_uris", metavar="URI")
        create.add_argument("--scope", action="append", default=[], dest="scopes", metavar="S")
        create.add_argument("--audience", action="append", default=[], dest="audiences", metavar="A")
        create.add_argument("--skip-consent", action="store_true", help="First-party client: no consent page.")
        create.add_argument("--allowed-origin", action="append", default=[], dest="origins", metavar="ORIGIN",
                            help="Browser origin allowed to call the token endpoint (CORS).")
        create.add_argument("--json", action="store_true")
        actions.add_parser("list", help="List clients.")
        rotate = actions.add_parser("rotate-secret", help="Replace a confidential client's secret.")
        rotate.add_argument("client_id")
        rotate.add_argument("--json", action="store_true")
        disable = actions.add_parser("disable", help="Disable a client and stop accepting its tokens.")
        disable.add_argument("client_id")
        for name, verb in (("allow-exchange", "Let"), ("revoke-exchange", "Stop letting")):
            policy = actions.add_parser(
                name, help=f"{verb} a client exchange tokens addressed to one audience for another (RFC 8693)."
            )
            policy.add_argument("client_id")
            policy.add_argument("--from", required=True, dest="subject_audience", metavar="AUDIENCE",
                                help="The audience of the tokens the client presents (usually its own service).")
            policy.add_argument("--to", required=True, dest="target_audience", metavar="AUDIENCE",
                                help="The audience of the tokens it obtains.")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, "_" + action.replace("-", "_"))(options)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None

    def _create(self, options) -> None:
        issued = client_create(
            name=options["name"],
            client_type=options["type"],
            grant_types=options["grants"],
            redirect_uris=options["redirect_uris"],
            post_logout_redirect_uris=options["post_logout_redirect_uris"],
            allowed_scopes=options["scopes"],
            audiences=options["audiences"],
            skip_consent=options["skip_consent"],
            allowed_origins=options["origins"],
        )
        self._print_issued(issued, options["json"])

    def _rotate_secret(self, options) -> None:
        issued = client_rotate_secret(client=client_get(client_id=options["client_id"]))
        self._print_issued(issued, options["json"])

    def _disable(self, options) -> None:
        client = client_disable(client=client_get(client_id=options["client_id"]))
        self.stdout.write(f"Disabled {client}.")

    def _list(self, options) -> None:
        header = f"{'CLIENT_ID':<42} {'TYPE':<12} {'ENABLED':<8} {'GRANTS':<40} NAME"
        self.stdout.write(header)
        for client in client_list():
            grants = ",".join(client.grant_types)
            self.stdout.write(
                f"{client.client_id:<42} {client.client_type:<12} {'yes' if client.enabled else 'no':<8} "
                f"{grants:<40} {client.name}"
            )

    def _print_issued(self, issued, as_json: bool) -> None:
        if as_json:
            payload = {"client_id": issued.client.client_id}
            if issued.client_secret:
                payload["client_secret"] = issued.client_secret
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(f"client_id:     {issued.client.client_id}")
        if issued.client_secret:
            self.stdout.write(f"client_secret: {issued.client_secret}")
            self.stdout.write("Store the secret now: it is shown only once.")

    def _allow_exchange(self, options) -> None:
        client = client_get(client_id=options["client_id"])
        exchange_policy_allow(client=client, subject_audience=options["subject_audience"],
                              target_audience=options["target_audience"])
        self.stdout.write(f"{client.client_id} may exchange tokens for {options['subject_audience']} into tokens for "
                          f"{options['target_audience']}.")

    def _revoke_exchange(self, options) -> None:
        client = client_get(client_id=options["client_id"])
        if not exchange_policy_revoke(client=client, subject_audience=options["subject_audience"],
                                      target_audience=options["target_audience"]):
            raise CommandError("No such exchange policy.")
        self.stdout.write("Exchange policy removed.")
