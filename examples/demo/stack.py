"""The demo's parts on loopback: the IdP (as `make serve` runs it), the two services and the Apache gateway.

Used by `python -m examples.demo` and by the end-to-end tests, with the same code: each part is started, waited for
until it answers, and stopped (process group by process group) when the stack is closed.
"""

from __future__ import annotations

import getpass
import grp
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from examples.demo.processes import Process, StartupError, run_checked, wait_until
from examples.demo.tls import loopback_certificate

REPO = Path(__file__).resolve().parents[2]
APACHE = Path("/usr/sbin/apache2")
OPENIDC_MODULE = Path("/usr/lib/apache2/modules/mod_auth_openidc.so")
GATEWAY_CONFIG = REPO / "examples" / "gateway" / "httpd.conf"

ORDERS_AUDIENCE = "https://orders.example.com"
INVENTORY_AUDIENCE = "https://inventory.example.com"
WEB_SCOPES = ("openid", "orders:read", "inventory:read")


@dataclass(frozen=True)
class Ports:
    idp: int = 8000
    gateway: int = 8080
    gateway_jwks: int = 8443
    orders: int = 8101
    inventory: int = 8102


@dataclass(frozen=True)
class DemoAccounts:
    """What provisioning created at the IdP; written to demo.env (mode 0600) for curl and `demo token`."""

    web_client_id: str
    web_client_secret: str
    orders_client_id: str
    orders_client_secret: str
    alice_password: str
    bob_password: str


def gateway_unavailable_reason() -> str | None:
    """Why the gateway cannot run here (Debian's apache2 or libapache2-mod-auth-openidc missing), or None."""
    if not APACHE.exists():
        return f"{APACHE} is missing: apt-get install apache2-bin libapache2-mod-auth-openidc"
    if not OPENIDC_MODULE.exists():
        return f"{OPENIDC_MODULE} is missing: apt-get install libapache2-mod-auth-openidc"
    return None


def _issued_client(output: str) -> dict:
    # `client create --json` prints one JSON object; the IdP's audit log lines may share standard output with it.
    for line in reversed(output.splitlines()):
        try:
            issued = json.loads(line)
        except ValueError:
            continue
        if isinstance(issued, dict) and "client_secret" in issued and "event" not in issued:
            return issued
    raise StartupError("`manage.py client create --json` printed no client_id and secret.")


class Stack:
    """Start with `start()` (or `with Stack(...) as stack:`); `stop()` ends every process this object started."""

    def __init__(self, *, var_dir: Path, ports: Ports | None = None, with_gateway: bool = True,
                 startup_timeout: float = 60, gateway_jwks_refresh: int = 300, python: str = sys.executable,
                 idp_settings: dict[str, str] | None = None) -> None:
        self.var_dir, self.ports = var_dir, ports or Ports()
        self.idp_settings = dict(idp_settings or {})
        self.with_gateway, self.startup_timeout = with_gateway, startup_timeout
        self.gateway_jwks_refresh, self.python = gateway_jwks_refresh, python
        self.issuer = f"http://127.0.0.1:{self.ports.idp}"
        self.gateway_url = f"http://127.0.0.1:{self.ports.gateway}"
        self.orders_url = f"http://127.0.0.1:{self.ports.orders}"
        self.inventory_url = f"http://127.0.0.1:{self.ports.inventory}"
        self.web_redirect_uri = f"{self.gateway_url}/callback"
        self.logs = var_dir / "logs"
        self.accounts: DemoAccounts | None = None
        self.bootstrap_output = ""
        self._processes: list[Process] = []
        self._gateway_run_dir: Path | None = None

    # --- Lifecycle. ------------------------------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> DemoAccounts:
        """IdP, accounts, services, gateway, in that order; raises StartupError naming the part that failed."""
        if self.with_gateway and (reason := gateway_unavailable_reason()):
            raise StartupError(reason)
        self._require_free_ports()
        self.logs.mkdir(parents=True, exist_ok=True)
        self._start_idp()
        self.accounts = self._provision()
        self._write_env_file(self.accounts)
        self._start_services(self.accounts)
        if self.with_gateway:
            self._start_gateway()
        return self.accounts

    def stop(self) -> None:
        """Stop every started process, newest first, and remove the gateway's runtime directory."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if self._gateway_run_dir is not None:
            shutil.rmtree(self._gateway_run_dir, ignore_errors=True)
            self._gateway_run_dir = None

    def dead_process(self) -> Process | None:
        """A started process that has exited, if any."""
        return next((process for process in self._processes if not process.running()), None)

    # --- The IdP. --------------------------------------------------------------------------------------------------

    def idp_env(self) -> dict[str, str]:
        """The IdP's environment: its own issuer, var directory and SQLite database under the demo's directory, plus
        `idp_settings` (other IDP_* variables)."""
        idp_var = self.var_dir / "idp"
        return {**self._base_env(), **self.idp_settings, "IDP_ISSUER": self.issuer, "IDP_VAR_DIR": str(idp_var),
                "DATABASE_URL": f"sqlite:///{idp_var / 'idp.sqlite3'}"}

    def manage(self, *args: str, stdin: str | None = None) -> str:
        """Run one of the IdP's management commands against the demo's IdP; returns its standard output."""
        return run_checked([self.python, "manage.py", *args], env=self.idp_env(), cwd=REPO, stdin=stdin)

    def _start_idp(self) -> None:
        # What `make serve` does, against the demo's own database.
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        self.bootstrap_output = self.manage("bootstrap")
        idp = self._spawn("idp", [self.python, "-m", "gunicorn", "-c", "python:idp.gunicorn_conf", "idp.wsgi",
                                  "--bind", f"127.0.0.1:{self.ports.idp}", "--workers", "2", "--access-logfile", "-"],
                          self.idp_env())
        wait_until(idp, f"{self.issuer}/readyz", ready=lambda r: r.status_code == 200, timeout=self.startup_timeout)

    def _provision(self) -> DemoAccounts:
        """The role, the two users and the two clients the demo needs, made with the IdP's own CLI."""
        alice_password, bob_password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        self.manage("role", "create", "admin", "--description", "Administers orders and inventory")
        self.manage("user", "create", "alice", "--email", "alice@example.com", "--role", "admin", "--password-stdin",
                    stdin=alice_password + "\n")
        self.manage("user", "create", "bob", "--email", "bob@example.com", "--password-stdin",
                    stdin=bob_password + "\n")
        scopes = [argument for scope in WEB_SCOPES for argument in ("--scope", scope)]
        web = _issued_client(self.manage(
            "client", "create", "--name", "Demo web app", "--type", "confidential", "--grant", "authorization-code",
            "--redirect-uri", self.web_redirect_uri, *scopes, "--audience", ORDERS_AUDIENCE,
            "--audience", INVENTORY_AUDIENCE, "--skip-consent", "--json",
        ))
        orders = _issued_client(self.manage(
            "client", "create", "--name", "Orders service", "--type", "confidential", "--grant", "client-credentials",
            "--grant", "token-exchange", "--scope", "inventory:read", "--audience", INVENTORY_AUDIENCE, "--json",
        ))
        self._allow_exchange(orders["client_id"], subject_audience=ORDERS_AUDIENCE, target_audience=INVENTORY_AUDIENCE)
        return DemoAccounts(web_client_id=web["client_id"], web_client_secret=web["client_secret"],
                            orders_client_id=orders["client_id"], orders_client_secret=orders["client_secret"],
                            alice_password=alice_password, bob_password=bob_password)

    def _allow_exchange(self, client_id: str, *, subject_audience: str, target_audience: str) -> None:
        """The admin policy letting orders trade its callers' tokens for inventory tokens (RFC 8693 on-behalf-of)."""
        self.manage("client", "allow-exchange", client_id, "--from", subject_audience, "--to", target_audience)

    def _write_env_file(self, accounts: DemoAccounts) -> None:
        values = {
            "IDP_ISSUER": self.issuer, "GATEWAY": self.gateway_url, "ORDERS_URL": self.orders_url,
            "INVENTORY_URL": self.inventory_url, "ORDERS_AUDIENCE": ORDERS_AUDIENCE,
            "INVENTORY_AUDIENCE": INVENTORY_AUDIENCE, "WEB_REDIRECT_URI": self.web_redirect_uri,
            **{name.upper(): value for name, value in asdict(accounts).items()},
        }
        path = self.var_dir / "demo.env"
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
        path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))

    # --- The services. ---------------------------------------------------------------------------------------------

    def _start_services(self, accounts: DemoAccounts) -> None:
        common = {**self._base_env(), "IDP_ISSUER": self.issuer, "ORDERS_AUDIENCE": ORDERS_AUDIENCE,
                  "INVENTORY_AUDIENCE": INVENTORY_AUDIENCE}
        inventory = self._spawn_service("inventory", self.ports.inventory, common)
        orders = self._spawn_service("orders", self.ports.orders, {
            **common, "ORDERS_CLIENT_ID": accounts.orders_client_id,
            "ORDERS_CLIENT_SECRET": accounts.orders_client_secret, "INVENTORY_URL": self.inventory_url,
        })
        for process, url in ((inventory, self.inventory_url), (orders, self.orders_url)):
            wait_until(process, f"{url}/healthz", ready=lambda r: r.status_code == 200,
                       timeout=self.startup_timeout)

    def _spawn_service(self, name: str, port: int, env: dict[str, str]) -> Process:
        return self._spawn(name, [
            self.python, "-m", "gunicorn", f"examples.{name}.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--threads", "8", "--access-logfile", "-",
        ], {**env, "DJANGO_SETTINGS_MODULE": f"examples.{name}.settings"})

    # --- The gateway. ----------------------------------------------------------------------------------------------

    def gateway_env(self) -> dict[str, str]:
        """The variables examples/gateway/httpd.conf reads."""
        as_root = os.geteuid() == 0
        return {
            **self._base_env(),
            "GATEWAY_PORT": str(self.ports.gateway), "GATEWAY_JWKS_PORT": str(self.ports.gateway_jwks),
            "GATEWAY_RUN_DIR": str(self._gateway_run_dir), "GATEWAY_JWKS_REFRESH": str(self.gateway_jwks_refresh),
            # Started as root, Apache's workers switch to an unprivileged user; otherwise they stay who we are.
            "GATEWAY_USER": "nobody" if as_root else getpass.getuser(),
            "GATEWAY_GROUP": "nogroup" if as_root else grp.getgrgid(os.getegid()).gr_name,
            "IDP_ISSUER": self.issuer, "ORDERS_AUDIENCE": ORDERS_AUDIENCE, "ORDERS_PORT": str(self.ports.orders),
            "INVENTORY_AUDIENCE": INVENTORY_AUDIENCE, "INVENTORY_PORT": str(self.ports.inventory),
        }

    def _start_gateway(self) -> None:
        # A fresh directory under /tmp, readable by the unprivileged workers whatever the checkout's permissions.
        self._gateway_run_dir = Path(tempfile.mkdtemp(prefix="idp-demo-gateway-"))
        os.chmod(self._gateway_run_dir, 0o755)  # noqa: S103 (holds only the public certificate and a pid file)
        loopback_certificate(self._gateway_run_dir, "jwks-relay")
        env = self.gateway_env()
        run_checked([str(APACHE), "-f", str(GATEWAY_CONFIG), "-t"], env=env, cwd=REPO, timeout=30)
        gateway = self._spawn("gateway", [str(APACHE), "-f", str(GATEWAY_CONFIG), "-DFOREGROUND"], env)
        # Ready when it answers a tokenless request at a protected route with its own 401.
        wait_until(gateway, f"{self.gateway_url}/orders/profile", ready=lambda r: r.status_code == 401,
                   timeout=self.startup_timeout)

    # --- Helpers. --------------------------------------------------------------------------------------------------

    def _require_free_ports(self) -> None:
        # Another program on a port would answer the readiness checks in our parts' place.
        ports = asdict(self.ports) if self.with_gateway else {
            name: port for name, port in asdict(self.ports).items() if not name.startswith("gateway")}
        busy = []
        for name, port in ports.items():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no user
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(f"{name} ({port})")
        if busy:
            raise StartupError(f"Ports already in use on 127.0.0.1: {', '.join(busy)}. Stop what holds them first.")

    def _base_env(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items()
               if name not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "IDP_ISSUER", "PYTHONPATH"}}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "toolkit")])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        process = Process(name, argv, env=env, cwd=REPO, log_path=self.logs / f"{name}.log")
        self._processes.append(process)
        return process


__all__ = ["DemoAccounts", "Ports", "Stack", "StartupError", "gateway_unavailable_reason"]
