"""Where a page may send the browser next: only to a path on this IdP, never to another site."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.utils.http import url_has_allowed_host_and_scheme

NEXT_MAX_LENGTH = 2048


def safe_next_path(value: str | None) -> str | None:
    """`value` if it is a path on this IdP (with an optional query), else None.

    Refused: anything with a scheme or host (https://evil.example, javascript:...), protocol-relative "//host"
    and "/\\host" (browsers read a backslash as a slash), control characters and whitespace that browsers strip
    before parsing, and over-long values. Absolute URLs to our own host are refused too: a path is all any page
    of ours ever needs.
    """
    if not value or len(value) > NEXT_MAX_LENGTH:
        return None
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    # Django's own check as a second opinion; with no allowed hosts it accepts only host-less URLs.
    if not url_has_allowed_host_and_scheme(value, allowed_hosts=set(), require_https=False):
        return None
    return value
