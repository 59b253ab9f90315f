"""The client CLI with the exact spellings operators' scripts use; secrets shown once, stored hashed."""

import io
import json
import time

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command

from clients.models import Client


def run(*args):
    out = io.StringIO()
    call_command("client", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_confidential_client_prints_id_and_secret_as_json():
    output = run("create", "--name", "Orders", "--type", "confidential", "--grant", "authorization-code",
                 "--grant", "client-credentials", "--redirect-uri", "https://orders.example.com/cb",
                 "--post-logout-redirect-uri", "https://orders.example.com/bye", "--scope", "openid",
                 "--scope", "orders:read", "--audience", "https://orders.example.com", "--skip-consent", "--json")
    payload = json.loads(output)
    client = Client.objects.get(client_id=payload["client_id"])
    secret = payload["client_secret"]
    assert len(secret) >= 43  # 256 bits, url-safe base64
    assert secret not in client.client_secret
    assert client.client_secret.startswith("client_secret_hmac_sha256$")
    assert check_password(secret, client.client_secret)
    assert client.grant_types == ["authorization-code", "client-credentials"]
    assert client.skip_authorization is True
    assert client.default_audience == "https://orders.example.com"
    assert client.scope_list == ["openid", "orders:read"]


@pytest.mark.django_db
def test_public_client_gets_no_secret():
    output = run("create", "--name", "SPA", "--type", "public", "--grant", "authorization-code",
                 "--redirect-uri", "http://127.0.0.1:5173/cb", "--json")
    assert set(json.loads(output)) == {"client_id"}


@pytest.mark.django_db
def test_plain_output_shows_the_secret_once_and_list_never_shows_it():
    output = run("create", "--name", "Svc", "--type", "confidential", "--grant", "client-credentials")
    secret = output.split("client_secret:")[1].split()[0]
    listing = run("list")
    assert "Svc" in listing and secret not in listing


@pytest.mark.django_db
def test_rotate_secret_prints_a_new_secret_and_the_old_one_stops_matching():
    first = json.loads(run("create", "--name", "Svc", "--type", "confidential", "--grant", "client-credentials",
                           "--json"))
    second = json.loads(run("rotate-secret", first["client_id"], "--json"))
    client = Client.objects.get(client_id=first["client_id"])
    assert second["client_secret"] != first["client_secret"]
    assert check_password(second["client_secret"], client.client_secret)
    assert not check_password(first["client_secret"], client.client_secret)
    assert client.secret_rotated_at is not None


@pytest.mark.django_db
def test_disable_marks_the_client_unusable():
    first = json.loads(run("create", "--name", "Svc", "--type", "confidential", "--grant", "client-credentials",
                           "--json"))
    run("disable", first["client_id"])
    assert Client.objects.get(client_id=first["client_id"]).enabled is False


@pytest.mark.django_db
@pytest.mark.parametrize("args, message", [
    (["--grant", "authorization-code", "--redirect-uri", "http://evil.example.com/cb"], "non-loopback"),
    (["--grant", "authorization-code"], "needs at least one redirect URI"),
    (["--grant", "authorization-code", "--redirect-uri", "https://*.example.com/cb"], "wildcard"),
])
def test_invalid_clients_are_refused_with_one_line_and_nothing_written(args, message):
    with pytest.raises(CommandError, match=message):
        run("create", "--name", "Bad", "--type", "confidential", *args)
    assert not Client.objects.exists()


@pytest.mark.django_db
def test_unknown_client_id_is_a_clear_error():
    with pytest.raises(CommandError, match="No client with client_id 'nope'"):
        run("rotate-secret", "nope")


@pytest.mark.django_db
def test_verifying_a_client_secret_costs_microseconds_not_a_password_hash():
    secret = json.loads(run("create", "--name", "Svc", "--type", "confidential", "--grant", "client-credentials",
                            "--json"))["client_secret"]
    stored = Client.objects.get().client_secret
    started = time.perf_counter()
    for _ in range(200):
        assert check_password(secret, stored)
    # 200 Argon2id verifications would take seconds; this bounds the hasher class, not the machine's speed.
    assert (time.perf_counter() - started) / 200 < 0.005


def test_exchange_policies_are_allowed_and_revoked_from_the_cli_and_audited(db):
    from audit.models import Event
    from clients.models import TokenExchangePolicy
    from clients.services import client_create

    orders = client_create(name="Orders", client_type="confidential", grant_types=["client-credentials",
                                                                                   "token-exchange"],
                           allowed_scopes=["inventory:read"], audiences=["https://inventory.example.com"]).client
    out = io.StringIO()
    call_command("client", "allow-exchange", orders.client_id, "--from", "https://orders.example.com",
                 "--to", "https://inventory.example.com", stdout=out)
    assert "may exchange" in out.getvalue()
    assert TokenExchangePolicy.objects.filter(client=orders, target_audience="https://inventory.example.com").exists()
    assert Event.objects.get(type="client.exchange_allowed").detail["target_audience"] == (
        "https://inventory.example.com")
    call_command("client", "revoke-exchange", orders.client_id, "--from", "https://orders.example.com",
                 "--to", "https://inventory.example.com", stdout=io.StringIO())
    assert not TokenExchangePolicy.objects.exists()
    assert Event.objects.filter(type="client.exchange_revoked").count() == 1
    with pytest.raises(CommandError, match="No such exchange policy"):
        call_command("client", "revoke-exchange", orders.client_id, "--from", "a", "--to", "b", stdout=io.StringIO())
    with pytest.raises(CommandError, match="only extend its life"):
        call_command("client", "allow-exchange", orders.client_id, "--from", "a", "--to", "a", stdout=io.StringIO())
