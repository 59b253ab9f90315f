"""A person's tokens, the way a web app gets them: sign in at the IdP, authorization code with PKCE, redeem.

The demo uses this to hand out user access tokens for curl, and the end-to-end tests use it as a real client would.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import requests

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class LoginError(RuntimeError):
    """Signing in or the code flow did not succeed; the message says at which step."""


def _s256(verifier: str) -> str:
    # RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))), without padding.
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def user_tokens(*, issuer: str, client_id: str, client_secret: str, redirect_uri: str, username: str,
                password: str, scope: str, resource: str | None = None, timeout: float = 10) -> dict:
    """The token response (access_token, id_token, refresh_token ...) for `username` at this client.

    `resource` (RFC 8707) picks which of the client's audiences the access token is for.
    """
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=timeout).json()
    browser = requests.Session()
    login_url = f"{issuer}/login/"
    page = browser.get(login_url, timeout=timeout)
    csrf = _CSRF.search(page.text)
    if page.status_code != 200 or csrf is None:
        raise LoginError(f"The sign-in page did not load (HTTP {page.status_code}).")
    signed_in = browser.post(login_url, timeout=timeout, allow_redirects=False, headers={"Referer": login_url},
                             data={"username": username, "password": password, "next": "/healthz",
                                   "csrfmiddlewaretoken": csrf.group(1)})
    if signed_in.status_code != 302:
        raise LoginError(f"Signing in as {username} failed (HTTP {signed_in.status_code}).")

    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    authorized = browser.get(metadata["authorization_endpoint"], allow_redirects=False, timeout=timeout, params={
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
        "state": state, "nonce": nonce, "code_challenge": _s256(verifier), "code_challenge_method": "S256",
    })
    location = authorized.headers.get("Location", "")
    if authorized.status_code != 302 or not location.startswith(redirect_uri):
        raise LoginError(f"The authorization request was not answered with a redirect to {redirect_uri} "
                         f"(HTTP {authorized.status_code}).")
    answer = {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}
    # RFC 6749 §10.12 (state) and RFC 9207 (iss): the answer is for this request and from this issuer.
    if answer.get("state") != state or answer.get("iss", issuer) != issuer or "code" not in answer:
        raise LoginError(f"The authorization response is an error or not ours: {answer.get('error', 'no code')}.")

    data = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    if resource:
        data["resource"] = resource
    redeemed = requests.post(metadata["token_endpoint"], auth=(client_id, client_secret), data=data, timeout=timeout)
    if redeemed.status_code != 200:
        raise LoginError(f"Redeeming the code failed: {redeemed.text[:200]}")
    return redeemed.json()
