"""The toolkit's only network access: small, bounded GETs and form POSTs of JSON documents over urllib."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

# Far above any discovery document, JWK Set or token response; a larger answer is refused, not parsed.
MAX_RESPONSE_BYTES = 512 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:[,=]|$)", re.IGNORECASE)


class FetchError(Exception):
    """A document could not be fetched or was not a JSON object."""


@dataclass(frozen=True)
class FetchedJson:
    """A fetched JSON object, its HTTP status and how long it may be cached (None: the server did not say)."""

    status: int
    document: dict
    max_age: int | None


def is_loopback_host(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only hosts where plain http is acceptable."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_safe_url(url: str, *, what: str) -> str:
    """The URL itself when it is https, or http on a loopback host; raises ValueError otherwise.

    Keys and tokens travel over these URLs: over plain http anyone on the path could swap the keys (RFC 8414 §2,
    OpenID Connect Discovery §3 require TLS).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise ValueError(f"The {what} {url!r} must be an https URL (plain http only on a loopback address).")


def cache_lifetime(cache_control: str | None, age: str | None) -> int | None:
    """Seconds a response may be reused per RFC 9111 §5.2.2: max-age less Age; 0 for no-store/no-cache; None if
    the server gave no lifetime."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return None
    lifetime = int(match.group(1))
    if age and age.strip().isdigit():
        lifetime -= int(age.strip())
    return max(lifetime, 0)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A metadata, key or token endpoint that redirects is misconfigured or hijacked; following it could hand our
    # client secret or our trust to another host. The 3xx is returned as an HTTPError instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _read(url: str, timeout: float, **request_options) -> FetchedJson:
    try:
        require_safe_url(url, what="URL")
    except ValueError as error:
        raise FetchError(str(error)) from None
    request = urllib.request.Request(url, **request_options)  # noqa: S310 (scheme checked just above)
    try:
        with _opener.open(request, timeout=timeout) as response:
            status, headers, body = response.status, response.headers, response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read(MAX_RESPONSE_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise FetchError(f"{url}: {error}") from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise FetchError(f"{url}: the response is larger than {MAX_RESPONSE_BYTES} bytes.")
    try:
        document = json.loads(body)
    except ValueError:
        raise FetchError(f"{url}: the response (HTTP {status}) is not JSON.") from None
    if not isinstance(document, dict):
        raise FetchError(f"{url}: the response (HTTP {status}) is not a JSON object.")
    return FetchedJson(status, document, cache_lifetime(headers.get("Cache-Control"), headers.get("Age")))


def get_json(url: str, *, timeout: float) -> FetchedJson:
    """GET a JSON object; raises FetchError for a network error, a non-200 answer or anything but a JSON object."""
    response = _read(url, timeout, headers={"Accept": "application/json"})
    if response.status != 200:
        raise FetchError(f"{url}: HTTP {response.status}.")
    return response


def post_form(url: str, *, data: dict[str, str], basic_auth: tuple[str, str], timeout: float) -> FetchedJson:
    """POST an application/x-www-form-urlencoded body with HTTP Basic client authentication (RFC 6749 §2.3.1).

    Any status is returned, so the caller can read an RFC 6749 §5.2 error object; FetchError only when there is no
    JSON object to read.
    """
    # RFC 6749 §2.3.1: client_id and secret are form-urlencoded before they are joined for Basic authentication.
    user, password = (urllib.parse.quote_plus(part) for part in basic_auth)
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return _read(
        url,
        timeout,
        data=urllib.parse.urlencode(data).encode(),
        method="POST",
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {credentials}",
        },
    )
