"""Browser sessions: cookie flags, key rotation, idle and absolute timeouts on the server, revocation, logout events."""

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from accounts.models import UserSession
from accounts.services import user_sign_out_everywhere
from accounts.sessions import (
    END_IDLE,
    END_MAX_AGE,
    END_REVOKED,
    SESSION_AUTH_TIME,
    SESSION_LAST_ACTIVITY,
    SESSION_SID,
    browser_label,
)
from audit import events
from audit.chain import GENESIS_HASH
from audit.models import ChainHead, Event
from tests.accounts.browser_sessions import (
    FIREFOX,
    SAFARI_IPHONE,
    age_session,
    is_signed_in,
    session_exists,
    session_key,
    session_store,
    sign_in,
    stored_session,
)
from tests.flows.conftest import authorize, browser, discovery, idp, make_client, rp  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
COOKIE = settings.SESSION_COOKIE_NAME


@pytest.fixture
def audit_chain(transactional_db):
    # A transactional test flushes the tables, and with them the chain head that a migration created.
    ChainHead.objects.get_or_create(pk=1, defaults={"last_hash": GENESIS_HASH, "anchor_hash": GENESIS_HASH})


# --- The cookie. ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_session_cookie_is_http_only_same_site_lax_and_not_secure_on_an_http_issuer(alice, password):
    response = Client().post("/login/", {"username": "alice", "password": password})
    cookie = response.cookies[COOKIE]
    assert COOKIE == "idp_session"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] == ""
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""


def test_https_issuer_sets_a_secure_host_prefixed_http_only_lax_session_cookie(tmp_path):
    # A separate process, because the cookie settings are derived from IDP_ISSUER when settings load.
    script = (
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from django.conf import settings\n"
        "from django.test import Client\n"
        "from accounts.services import user_create\n"
        "user_create(username='carol', password='correct-horse-battery-staple-42')\n"
        "response = Client(SERVER_NAME='id.example.com').post(\n"
        "    '/login/', {'username': 'carol', 'password': 'correct-horse-battery-staple-42'}, secure=True)\n"
        "cookie = response.cookies[settings.SESSION_COOKIE_NAME]\n"
        "print(json.dumps({'status': response.status_code, 'name': settings.SESSION_COOKIE_NAME,\n"
        "    'secure': cookie['secure'], 'httponly': cookie['httponly'], 'samesite': cookie['samesite'],\n"
        "    'path': cookie['path'], 'domain': cookie['domain']}))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "IDP_VAR_DIR": str(tmp_path / "var"),
        "IDP_ISSUER": "https://id.example.com", "SECRET_KEY": "s" * 20 + "Q7%kZ2!vL9@xR4#mT8^wN1&bF6*hJ3(sD5)",
        "IDP_KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3",
    }
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", "import json\n" + script], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    cookie = json.loads(result.stdout.strip().splitlines()[-1])
    assert cookie == {"status": 302, "name": "__Host-idp_session", "secure": True, "httponly": True,
                      "samesite": "Lax", "path": "/", "domain": ""}


# --- Sign-in: rotation and the session list. -------------------------------------------------------------------


@pytest.mark.django_db
def test_session_fixation_is_stopped_by_rotating_the_session_key_at_login(alice, password):
    planted = session_store()()
    planted["planted"] = True
    planted.create()
    victim = Client()
    victim.cookies[COOKIE] = planted.session_key

    sign_in("alice", password, client=victim)

    assert session_key(victim) != planted.session_key
    assert not session_exists(planted.session_key)
    assert stored_session(victim)["_auth_user_id"] == str(alice.pk)


@pytest.mark.django_db
def test_login_lists_the_session_with_its_ip_and_browser_and_marks_auth_time_and_sid(alice, password):
    before = int(time.time())
    visitor = sign_in("alice", password, ip="203.0.113.9", user_agent=SAFARI_IPHONE)

    row = UserSession.objects.get(user=alice)
    assert row.session_key == session_key(visitor)
    assert (row.ip, row.user_agent) == ("203.0.113.9", SAFARI_IPHONE)
    session = stored_session(visitor)
    assert session[SESSION_AUTH_TIME] >= before
    assert len(session[SESSION_SID]) >= 32
    # The store drops the session at the end of its absolute lifetime, however often it is written.
    assert session.get_expiry_date() == datetime.fromtimestamp(
        session[SESSION_AUTH_TIME] + settings.SESSION_COOKIE_AGE, tz=UTC)


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (FIREFOX, "Firefox on Linux"),
        (SAFARI_IPHONE, "Safari on iOS"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
         "Safari/537.36 Edg/126.0.0.0", "Edge on Windows"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
         "Safari/537.36", "Chrome on macOS"),
        ("curl/8.5.0", "Unknown browser"),
        ("", "Unknown browser"),
    ],
)
def test_browser_label_names_the_browser_and_system_in_plain_words(user_agent, label):
    assert browser_label(user_agent) == label


# --- Timeouts enforced on the server. ------------------------------------------------------------------------


@pytest.mark.django_db
def test_idle_session_is_ended_on_the_server_after_the_idle_timeout(alice, password):
    visitor = sign_in("alice", password)
    key = session_key(visitor)
    age_session(visitor, idle=settings.IDP_SESSION_IDLE_TIMEOUT + 1)

    response = visitor.get("/account/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not session_exists(key)
    assert not UserSession.objects.filter(user=alice).exists()
    event = Event.objects.get(type=events.LOGOUT)
    assert (event.user, event.reason) == (alice, END_IDLE)


@pytest.mark.django_db
def test_session_is_ended_at_its_absolute_lifetime_even_while_in_use(alice, password):
    visitor = sign_in("alice", password)
    key = session_key(visitor)
    age_session(visitor, since_sign_in=settings.SESSION_COOKIE_AGE + 1, idle=5)

    assert not is_signed_in(visitor)
    assert not session_exists(key)
    assert Event.objects.get(type=events.LOGOUT).reason == END_MAX_AGE


@pytest.mark.django_db
def test_idle_and_absolute_timeouts_follow_the_settings(alice, password, settings):
    settings.IDP_SESSION_IDLE_TIMEOUT = 120
    visitor = sign_in("alice", password)
    age_session(visitor, idle=100)
    assert is_signed_in(visitor)
    age_session(visitor, idle=121)
    assert not is_signed_in(visitor)

    settings.SESSION_COOKIE_AGE = 600
    visitor = sign_in("alice", password)
    age_session(visitor, since_sign_in=590, idle=5)
    assert is_signed_in(visitor)
    age_session(visitor, since_sign_in=601, idle=5)
    assert not is_signed_in(visitor)


@pytest.mark.django_db
def test_activity_is_written_at_most_once_a_minute(alice, password):
    visitor = sign_in("alice", password)
    row = UserSession.objects.get(user=alice)

    quiet = visitor.get("/account/")
    assert quiet.status_code == 200
    assert COOKIE not in quiet.cookies  # the session was not written
    assert UserSession.objects.get(pk=row.pk).last_seen_at == row.last_seen_at

    age_session(visitor, idle=61)
    UserSession.objects.filter(pk=row.pk).update(last_seen_at=timezone.now() - timedelta(seconds=61))
    busy = visitor.get("/account/")
    assert busy.status_code == 200
    assert COOKIE in busy.cookies
    assert stored_session(visitor)[SESSION_LAST_ACTIVITY] >= int(time.time()) - 5
    assert UserSession.objects.get(pk=row.pk).last_seen_at > timezone.now() - timedelta(seconds=5)


@pytest.mark.django_db
def test_a_session_whose_row_was_deleted_is_refused_even_though_the_store_still_has_it(alice, password):
    visitor = sign_in("alice", password)
    key = session_key(visitor)
    UserSession.objects.filter(user=alice).delete()
    assert session_exists(key)

    assert not is_signed_in(visitor)
    assert not session_exists(key)
    assert Event.objects.get(type=events.LOGOUT).reason == END_REVOKED


@pytest.mark.django_db
def test_a_session_that_never_recorded_its_sign_in_time_is_refused(alice, password):
    visitor = sign_in("alice", password)
    session = stored_session(visitor)
    del session[SESSION_AUTH_TIME]
    session.save()

    assert not is_signed_in(visitor)
    assert Event.objects.get(type=events.LOGOUT).reason == END_MAX_AGE


# --- Logout, from every door. -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_out_page_clears_the_session_its_row_and_records_logout(alice, password):
    visitor = sign_in("alice", password)
    key = session_key(visitor)
    sid = stored_session(visitor)[SESSION_SID]

    response = visitor.post("/logout/")

    assert response.status_code == 302
    assert response.cookies[COOKIE].value == ""  # the cookie is deleted
    assert not session_exists(key)
    assert not UserSession.objects.exists()
    event = Event.objects.get(type=events.LOGOUT)
    assert (event.user, event.outcome, event.reason, event.detail["sid"]) == (alice, events.SUCCESS, "", sid)
    assert event.ip == "198.51.100.7"


@pytest.mark.django_db
def test_admin_logout_is_recorded_too(make_user, password):
    root = make_user(username="root", is_superuser=True)
    visitor = sign_in("root", password)

    assert visitor.post("/admin/logout/").status_code in (200, 302)

    assert Event.objects.get(type=events.LOGOUT).user == root
    assert not UserSession.objects.exists()


@pytest.mark.django_db
def test_a_visitor_who_was_not_signed_in_leaves_no_logout_event(client):
    client.post("/logout/")
    assert not Event.objects.filter(type=events.LOGOUT).exists()


@pytest.mark.django_db(transaction=True)
def test_rp_initiated_logout_ends_the_idp_session_and_records_logout(audit_chain, browser, discovery, rp):  # noqa: F811
    response, oauth, _ = authorize(browser, discovery, rp)
    tokens = oauth.fetch_token(discovery["token_endpoint"], authorization_response=response.headers["Location"],
                               code_verifier="v" * 64)
    key = browser.cookies[COOKIE]
    assert UserSession.objects.filter(session_key=key).exists()

    params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/bye"}
    page = browser.get(discovery["end_session_endpoint"], params=params, timeout=10)
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = browser.post(page.url, data={**form, "allow": "Logout"}, headers={"Referer": page.url},
                          allow_redirects=False, timeout=10)

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("https://rp.example.com/bye")
    assert not session_exists(key)
    assert not UserSession.objects.exists()
    event = Event.objects.get(type=events.LOGOUT)
    assert event.username == "alice"
    assert event.ip == "127.0.0.1"


# --- Signing a user out everywhere (the admin console calls this). ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sign_out_everywhere_ends_every_session_and_the_refresh_and_access_tokens(
    audit_chain, browser, discovery, rp  # noqa: F811 (fixtures imported from tests.flows.conftest)
):
    response, oauth, _ = authorize(browser, discovery, rp)
    tokens = oauth.fetch_token(discovery["token_endpoint"], authorization_response=response.headers["Location"],
                               code_verifier="v" * 64)
    from accounts.models import User

    alice = User.objects.get(username="alice")
    laptop = sign_in("alice", "correct-horse-battery-staple-42", ip="203.0.113.10")
    assert UserSession.objects.filter(user=alice).count() == 2
    administrator = Client()
    administrator.force_login(User.objects.create_superuser("root", "root@example.com", "x" * 20))
    admin_request = administrator.get("/account/").wsgi_request

    counts = user_sign_out_everywhere(user=alice, request=admin_request)

    assert counts == {"sessions": 2, "refresh_tokens": 1, "access_tokens": 1}
    assert not UserSession.objects.filter(user=alice).exists()
    assert not is_signed_in(laptop)
    assert browser.get(f"{discovery['issuer']}/account/", allow_redirects=False, timeout=10).status_code == 302
    assert get_refresh_token_model().objects.get(user=alice).revoked is not None
    assert not get_access_token_model().objects.filter(user=alice).exists()
    assert not get_grant_model().objects.filter(user=alice).exists()
    refreshed = requests.post(discovery["token_endpoint"], timeout=10,
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                              auth=(rp.client.client_id, rp.client_secret))
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    userinfo = requests.get(discovery["userinfo_endpoint"], timeout=10,
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    event = Event.objects.get(type=events.USER_SIGNED_OUT_EVERYWHERE)
    assert event.user == alice
    assert event.detail == {"sessions_ended": 2, "refresh_revoked": 1, "access_revoked": 1}
    revoked = Event.objects.filter(type=events.SESSION_REVOKED, reason="sign_out_everywhere")
    assert revoked.count() == 2
    assert all(e.detail["actor"] == "root" for e in revoked)
    assert is_signed_in(administrator)  # the administrator's own session is untouched
