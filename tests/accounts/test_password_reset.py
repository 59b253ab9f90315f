"""Password reset by email: one answer for every address, single-use expiring links on the issuer, sessions ended."""

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from django.test import Client

from accounts.models import User, UserSession
from accounts.services import user_create
from audit import events
from audit.models import Event
from tests.accounts.browser_sessions import is_signed_in, session_exists, session_key, sign_in

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-2024"
LINK = re.compile(r"^(https?://[^/\s]+)(/reset/[^/\s]+/[^/\s]+/)$", re.M)


@pytest.fixture
def alice(make_user):
    return make_user(username="alice", email="Alice@Example.com")


def ask_for_reset(client, email, **extra):
    return client.post("/password-reset/", {"email": email}, **extra)


def reset_link(message) -> tuple[str, str]:
    """(scheme://host, path) of the one link in a reset email."""
    found = LINK.findall(message.body)
    assert len(found) == 1, message.body
    return found[0]


def set_new_password(client, path, password=NEW_PASSWORD):
    """Open the emailed link, then submit the new password on the page it leads to."""
    opened = client.get(path)
    assert opened.status_code == 302, opened.content.decode()
    form_url = opened["Location"]
    assert form_url.endswith("/set-password/")  # the token left the URL before any page was shown
    assert client.get(form_url).status_code == 200
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def test_reset_page_has_a_labelled_email_field_and_no_inline_script(client):
    page = client.get("/password-reset/").content.decode()
    assert '<label for="id_email">Email</label>' in page
    assert 'autocomplete="email"' in page
    assert "<script" not in page and "style=" not in page


def test_a_reset_email_carries_a_link_on_the_issuer_whatever_the_host_header(alice, client, settings):
    settings.IDP_ISSUER = "https://id.example.com:8443"

    response = ask_for_reset(client, "alice@example.com", HTTP_HOST="localhost")

    assert response.status_code == 302
    assert response["Location"] == "/password-reset/done/"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [alice.email] == ["Alice@example.com"]
    assert message.subject == "Reset your password at id.example.com:8443"
    origin, path = reset_link(message)
    assert origin == "https://id.example.com:8443"
    assert "localhost" not in message.body
    assert "within 60 minutes" in message.body
    assert not message.alternatives  # plain text only
    event = Event.objects.get(type=events.PASSWORD_RESET_REQUESTED)
    assert (event.user, event.detail) == (alice, {"account_found": True, "email_domain": "example.com"})


def test_an_unknown_address_gets_the_same_answer_and_no_email(alice, client):
    known = ask_for_reset(client, "alice@example.com")
    known_page = client.get(known["Location"])
    unknown = ask_for_reset(Client(), "nobody@example.com")
    unknown_page = Client().get(unknown["Location"])

    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert unknown_page.content == known_page.content
    assert len(mail.outbox) == 1  # only alice's
    event = Event.objects.filter(type=events.PASSWORD_RESET_REQUESTED).order_by("seq").last()
    assert (event.user, event.detail["account_found"]) == (None, False)


def test_inactive_accounts_get_no_email_but_the_same_answer(make_user, client):
    gone = make_user(username="gone", email="gone@example.com")
    User.objects.filter(pk=gone.pk).update(is_active=False)
    response = ask_for_reset(client, "gone@example.com")
    assert response["Location"] == "/password-reset/done/"
    assert mail.outbox == []


def test_an_account_created_without_a_password_gets_its_first_one_by_reset(client):
    user_create(username="newcomer", email="newcomer@example.com")

    ask_for_reset(client, "newcomer@example.com")
    response = set_new_password(client, reset_link(mail.outbox[0])[1])

    assert response.status_code == 302
    assert authenticate(username="newcomer", password=NEW_PASSWORD) is not None


def test_a_reset_link_sets_the_password_ends_every_session_and_is_recorded(alice, password, client):
    laptop = sign_in("alice", password, ip="198.51.100.7")
    phone = sign_in("alice", password, ip="203.0.113.9")
    keys = [session_key(laptop), session_key(phone)]
    ask_for_reset(client, "alice@example.com")

    response = set_new_password(client, reset_link(mail.outbox[0])[1])

    assert response.status_code == 302
    assert response["Location"] == "/reset/done/"
    assert "Sign in" in client.get(response["Location"]).content.decode()
    assert authenticate(username="alice", password=NEW_PASSWORD) == alice
    assert authenticate(username="alice", password=password) is None
    assert not UserSession.objects.filter(user=alice).exists()
    assert not any(session_exists(key) for key in keys)
    assert not is_signed_in(laptop) and not is_signed_in(phone)
    assert "_auth_user_id" not in client.session  # the reset signs nobody in
    event = Event.objects.get(type=events.PASSWORD_RESET)
    assert (event.user, event.outcome, event.detail) == (alice, events.SUCCESS, {"sessions_ended": 2,
                                                                   "refresh_revoked": 0, "access_revoked": 0})
    assert Event.objects.filter(type=events.SESSION_REVOKED, reason="password_reset").count() == 2
    assert sign_in("alice", NEW_PASSWORD)


def test_a_reset_link_works_only_once(alice, client):
    ask_for_reset(client, "alice@example.com")
    path = reset_link(mail.outbox[0])[1]
    assert set_new_password(client, path).status_code == 302

    replay = Client().get(path)

    assert replay.status_code == 200
    assert "This link has expired or has already been used." in replay.content.decode()
    assert authenticate(username="alice", password=NEW_PASSWORD) == alice
    refused = Event.objects.get(type=events.PASSWORD_RESET, outcome=events.FAILURE)
    assert (refused.user, refused.reason) == (alice, "invalid_link")


def test_a_reset_link_expires_after_the_reset_timeout(alice, password, client, settings, monkeypatch):
    settings.PASSWORD_RESET_TIMEOUT = 900
    ask_for_reset(client, "alice@example.com")
    path = reset_link(mail.outbox[0])[1]
    assert "within 15 minutes" in mail.outbox[0].body
    later = datetime.now() + timedelta(seconds=901)
    monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: later)

    page = client.get(path)

    assert page.status_code == 200
    assert "This link has expired" in page.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(password)


def test_a_forged_reset_link_is_refused(alice, password, client):
    ask_for_reset(client, "alice@example.com")
    path = reset_link(mail.outbox[0])[1]
    forged = re.sub(r"/([^/]+)/$", lambda m: "/" + m.group(1)[:-1] + ("a" if m.group(1)[-1] != "a" else "b") + "/",
                    path)

    page = client.get(forged)

    assert page.status_code == 200
    assert "This link has expired or has already been used." in page.content.decode()
    assert client.post(forged.rsplit("/", 2)[0] + "/set-password/",
                       {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}).status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(password)
    assert Event.objects.filter(type=events.PASSWORD_RESET, outcome=events.FAILURE).count() == 2
    assert not Event.objects.filter(type=events.PASSWORD_RESET, outcome=events.SUCCESS).exists()


def test_the_new_password_must_pass_the_validators(alice, password, client):
    ask_for_reset(client, "alice@example.com")
    path = reset_link(mail.outbox[0])[1]
    form_url = client.get(path)["Location"]

    response = client.post(form_url, {"new_password1": "short", "new_password2": "short"})

    assert response.status_code == 200
    assert "too short" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(password)
    assert not Event.objects.filter(type=events.PASSWORD_RESET).exists()


def test_the_reset_confirmation_posts_need_a_csrf_token(alice, password):
    strict = Client(enforce_csrf_checks=True)
    assert ask_for_reset(strict, "alice@example.com").status_code == 403
    assert mail.outbox == []

    Client().post("/password-reset/", {"email": "alice@example.com"})
    form_url = strict.get(reset_link(mail.outbox[0])[1])["Location"]
    response = strict.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert response.status_code == 403
    alice.refresh_from_db()
    assert alice.check_password(password)


def test_a_reset_revokes_the_tokens_whoever_knew_the_old_password_obtained(client, alice, password):
    """An attacker who signed in with a stolen password keeps nothing after the owner resets it."""
    from django.conf import settings as django_settings
    from django.test import Client as BrowserClient

    from idp.keys import signing_key_ensure

    signing_key_ensure()
    attacker = BrowserClient()
    csrf = attacker.get("/api/auth/csrf").json()["csrfToken"]
    signed_in = attacker.post("/api/auth/login", {"username": "alice", "password": password},
                              content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert signed_in.status_code == 200
    csrf = signed_in.json()["csrfToken"]

    from accounts.services import user_password_reset_complete

    user_password_reset_complete(user=alice, request=None)
    attacker.cookies[django_settings.IDP_REFRESH_COOKIE_NAME]["path"] = "/"
    assert attacker.post("/api/auth/refresh", HTTP_X_CSRFTOKEN=csrf).status_code == 401
    assert attacker.get("/api/me").status_code == 401
