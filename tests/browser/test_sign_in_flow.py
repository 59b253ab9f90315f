"""A person signs in, consents, uses the account page and signs out in a real browser (headless Chromium)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



class _CallbackPage(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        body = b"<!DOCTYPE html><title>Relying party</title><p>Signed in.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def relying_party():
    """A relying party's callback on loopback (RFC 8252 §7.3 allows http there); it only shows a page."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CallbackPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/callback"
    server.shutdown()
    server.server_close()


def test_authorization_code_flow_through_the_real_pages(page, screenshot, idp, discovery, make_client, make_user,
                                                        password, jwks_client, relying_party):
    callback = relying_party
    make_user(username="alice", email="alice@example.com", roles=["admin"], first_name="Alice")
    issued = make_client(name="Orders web app", redirect_uris=[callback], skip_consent=False)
    oauth = OAuth2Session(issued.client.client_id, issued.client_secret, scope="openid profile email roles",
                          redirect_uri=callback, code_challenge_method="S256")
    verifier = "browser-verifier-" + "x" * 40
    url, state = oauth.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier)

    page.goto(url)
    assert urlsplit(page.url).path == "/login/"
    screenshot(page, "01-login")
    page.get_by_label("Username or email").fill("alice@example.com")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url("**/o/authorize/**")
    assert "Orders web app" in page.content()
    assert page.get_by_text("See your email address").is_visible()
    screenshot(page, "02-consent")
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(f"{callback}*")
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == [state]
    assert query["iss"] == [idp]
    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=page.url, code_verifier=verifier)
    key = jwks_client.get_signing_key_from_jwt(token["access_token"])
    claims = jwt.decode(token["access_token"], key.key, algorithms=["RS256"], audience="https://orders.example.com",
                        issuer=idp)
    assert claims["roles"] == ["admin"]

    cookies = {cookie["name"]: cookie for cookie in page.context.cookies(idp)}
    session_cookie = cookies["idp_session"]
    assert session_cookie["httpOnly"] is True
    assert session_cookie["sameSite"] == "Lax"

    # A second authorization for the same scopes is remembered: no consent page this time.
    url, _ = oauth.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier)
    page.goto(url)
    page.wait_for_url(f"{callback}*")
    assert "code" in parse_qs(urlsplit(page.url).query)

    page.goto(f"{idp}/account/")
    assert page.get_by_role("heading", name="Your account").is_visible()
    assert "Orders web app" in page.content()
    screenshot(page, "03-account")

    page.goto(f"{idp}/logout/")
    screenshot(page, "04-logout-confirm")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{idp}/account/")
    assert urlsplit(page.url).path == "/login/"
    assert "idp_session" not in {cookie["name"] for cookie in page.context.cookies(idp)}
    assert page.csp_violations == []


def test_the_login_page_cannot_be_framed(page, idp):
    page.set_content(f'<!DOCTYPE html><iframe id="victim" src="{idp}/login/" width="400" height="300"></iframe>')
    page.wait_for_timeout(1000)
    frame = page.frame_locator("#victim")
    assert frame.get_by_label("Password").count() == 0
    response = requests.get(f"{idp}/login/", timeout=10)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
