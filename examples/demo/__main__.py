"""`python -m examples.demo [up]` starts the whole demo; `python -m examples.demo token USER` prints a user's token.

    up     Start the IdP (127.0.0.1:8000), the orders (8101) and inventory (8102) services and the Apache gateway
           (8080, with its JWKS relay on 8443); create the role admin, the users alice (admin) and bob, and the two
           clients; print what to try; stop everything on Ctrl-C. Its data lives in var/demo/, wiped at each start.
    token  Sign USER in at the running demo's IdP (authorization code with PKCE, as the demo web app) and print the
           access token, for orders by default or for inventory with --audience inventory.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path

from examples.demo.login import LoginError, user_tokens
from examples.demo.stack import INVENTORY_AUDIENCE, ORDERS_AUDIENCE, REPO, WEB_SCOPES, Stack, StartupError

VAR_DIR = REPO / "var" / "demo"


def _instructions(stack: Stack) -> str:
    gateway, issuer, orders = stack.gateway_url, stack.issuer, stack.orders_url
    return f"""
The demo is running (logs in {stack.logs}). In another shell, from {REPO}:

  . var/demo/demo.env     # client ids, secrets and the users' passwords, for the lines below

  # A person's access token for orders, through the code flow with PKCE (alice has the role admin, bob has none):
  ALICE=$(.venv/bin/python -m examples.demo token alice)
  BOB=$(.venv/bin/python -m examples.demo token bob)

  curl -i -H "Authorization: Bearer $ALICE" {gateway}/orders/profile                 # 200
  curl -i -H "Authorization: Bearer $ALICE" {gateway}/orders/admin/orders            # 200: alice is admin
  curl -i -H "Authorization: Bearer $BOB"   {gateway}/orders/admin/orders            # 403 from the service
  curl -i {gateway}/orders/profile                                                   # 401 at the gateway
  curl -i -H "Authorization: Bearer forged.token.here" {gateway}/orders/profile      # 401 at the gateway
  curl -i -H "Authorization: Bearer $ALICE" {gateway}/inventory/profile              # 401: a token for orders
  curl -i {orders}/profile                                                          # 401 at the service itself

  # Orders asks inventory with its own client-credentials token, then on alice's behalf (RFC 8693 exchange):
  curl -i -H "Authorization: Bearer $ALICE" {gateway}/orders/orders/1/stock
  curl -i -H "Authorization: Bearer $ALICE" {gateway}/orders/orders/1/stock-as-user

  # A service token with client credentials, straight from the token endpoint:
  SVC=$(curl -s -u "$ORDERS_CLIENT_ID:$ORDERS_CLIENT_SECRET" -d grant_type=client_credentials \\
        -d resource={INVENTORY_AUDIENCE} {issuer}/o/token/ \\
        | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -i -H "Authorization: Bearer $SVC" {gateway}/inventory/stock/SKU-1            # 200: scope inventory:read
  curl -i -H "Authorization: Bearer $SVC" {gateway}/inventory/admin/stock            # 403: no role admin

Press Ctrl-C to stop everything.
"""


def _up() -> int:
    # Ctrl-C and SIGTERM (a supervisor, `kill`) both stop the children; SIGINT is reinstated in case a parent shell
    # started us with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shutil.rmtree(VAR_DIR, ignore_errors=True)
    VAR_DIR.mkdir(parents=True)
    stack = Stack(var_dir=VAR_DIR)
    try:
        print("Starting the IdP, the two services and the gateway on 127.0.0.1 ...", flush=True)
        stack.start()
        # The bootstrap administrator's one-time password, without the IdP's audit log lines around it.
        notice = "\n".join(line for line in stack.bootstrap_output.splitlines() if not line.startswith("{"))
        if notice.strip():
            print(notice.strip())
        print(_instructions(stack), flush=True)
        while (dead := stack.dead_process()) is None:
            time.sleep(1)
        print(f"{dead.name} stopped unexpectedly; see {dead.log_path}:\n{dead.log_tail()}", file=sys.stderr)
        return 1
    except StartupError as error:
        print(f"The demo did not start: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("Stopping ...", file=sys.stderr, flush=True)
        stack.stop()


def _read_env(path: Path) -> dict[str, str]:
    try:
        return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    except OSError:
        raise SystemExit(f"{path} is missing: start the demo first with `make demo`.") from None


def _token(username: str, audience: str) -> int:
    env = _read_env(VAR_DIR / "demo.env")
    password = env.get(f"{username.upper()}_PASSWORD")
    if password is None:
        raise SystemExit(f"The demo has no user {username!r}; try alice or bob.")
    try:
        tokens = user_tokens(issuer=env["IDP_ISSUER"], client_id=env["WEB_CLIENT_ID"],
                             client_secret=env["WEB_CLIENT_SECRET"], redirect_uri=env["WEB_REDIRECT_URI"],
                             username=username, password=password, scope=" ".join(WEB_SCOPES),
                             resource=ORDERS_AUDIENCE if audience == "orders" else INVENTORY_AUDIENCE)
    except (LoginError, OSError) as error:
        raise SystemExit(f"No token for {username}: {error}") from None
    print(tokens["access_token"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("up", help="Start the whole demo (the default).")
    token = actions.add_parser("token", help="Print a demo user's access token.")
    token.add_argument("username", choices=["alice", "bob"])
    token.add_argument("--audience", choices=["orders", "inventory"], default="orders")
    arguments = parser.parse_args(argv)
    if arguments.action == "token":
        return _token(arguments.username, arguments.audience)
    return _up()


if __name__ == "__main__":
    sys.exit(main())
