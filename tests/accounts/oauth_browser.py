"""Helpers for driving the authorization endpoint with Django's test client, as a signed-in browser would."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlencode, urlsplit

from clients.services import IssuedClient, client_create

REDIRECT_URI = "https://rp.example.com/callback"
POST_LOGOUT_REDIRECT_URI = "https://rp.example.com/bye"
VERIFIER = "consent-test-verifier-" + "v" * 40
SCOPES = ["openid", "profile", "email", "orders:read"]


def make_client(*, name: str = "Third Party App", skip_consent: bool = False, **overrides) -> IssuedClient:
    values = dict(
        name=name, client_type="confidential", grant_types=["authorization-code"], redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[POST_LOGOUT_REDIRECT_URI], allowed_scopes=SCOPES,
        audiences=["https://orders.example.com"], skip_consent=skip_consent,
    )
    values.update(overrides)
    return client_create(**values)


def authorize_url(issued: IssuedClient, *, scope: str = "openid email", state: str = "st-1", **extra: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code", "client_id": issued.client.client_id, "redirect_uri": REDIRECT_URI,
        "scope": scope, "state": state, "nonce": "n-1", "code_challenge": challenge,
        "code_challenge_method": "S256", **extra,
    }
    return "/o/authorize/?" + urlencode(params)


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the page's form, as the browser would post them back."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def redirect_query(response) -> dict[str, list[str]]:
    """The query of a redirect to the client; fails unless it goes to the registered redirect URI."""
    assert response.status_code == 302, response.content[:500]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return parse_qs(urlsplit(location).query)


def approve(browser, url: str, *, allow: bool = True):
    """Open the consent page and press Allow (or Deny)."""
    page = browser.get(url)
    assert page.status_code == 200, page.content[:500]
    form = hidden_fields(page.content.decode())
    if allow:
        form["allow"] = "Authorize"
    return browser.post(url, form)


def exchange_code(browser, issued: IssuedClient, code: str) -> dict:
    """Redeem an authorization code at the token endpoint, authenticating as the client."""
    basic = base64.b64encode(f"{issued.client.client_id}:{issued.client_secret}".encode()).decode()
    response = browser.post("/o/token/", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": VERIFIER,
    }, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content
    return response.json()
