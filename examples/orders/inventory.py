"""Orders' calls to the inventory service, with a token of its own or one exchanged for its caller's."""

from __future__ import annotations

import functools
from urllib.parse import quote

import requests
from django.conf import settings
from idp_resource_server import TokenClient, TokenRequestError
from rest_framework.exceptions import APIException


class UpstreamError(APIException):
    status_code = 502
    default_detail = "The inventory service could not be asked."
    default_code = "bad_gateway"


class UpstreamRefused(APIException):
    """Inventory refused or did not find it; its status (403, 404) is passed on to our caller."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status


@functools.cache
def token_client() -> TokenClient:
    """Orders' client at the IdP, one per process, so its client-credentials token is cached across requests."""
    return TokenClient(settings.IDP_RESOURCE_SERVER["ISSUER"], settings.ORDERS_CLIENT_ID,
                       settings.ORDERS_CLIENT_SECRET, timeout=settings.UPSTREAM_TIMEOUT)


def service_token() -> str:
    """Orders' own token for inventory (RFC 6749 §4.4), reused until shortly before it expires."""
    try:
        return token_client().client_credentials_token(audience=settings.INVENTORY_AUDIENCE)
    except TokenRequestError as error:
        raise UpstreamError(f"The IdP did not issue orders' own token: {error.error or 'unreachable'}.") from None


def exchanged_token(subject_token: str) -> str:
    """A token for inventory on behalf of the caller of `subject_token` (RFC 8693), with `act` naming orders."""
    try:
        return token_client().exchange(subject_token=subject_token, audience=settings.INVENTORY_AUDIENCE)
    except TokenRequestError as error:
        raise UpstreamError(f"The IdP refused the token exchange: {error.error or 'unreachable'}.") from None


def stock_of(sku: str, *, access_token: str) -> dict:
    """Inventory's answer for one SKU; inventory's 403 and 404 pass through, anything else unexpected is a 502."""
    try:
        response = requests.get(f"{settings.INVENTORY_URL}/stock/{quote(sku, safe='')}",
                                headers={"Authorization": f"Bearer {access_token}"},
                                timeout=settings.UPSTREAM_TIMEOUT)
    except requests.RequestException:
        raise UpstreamError() from None
    if response.status_code in (403, 404):
        raise UpstreamRefused(response.status_code, f"Inventory answered {response.status_code}: "
                                                    f"{_detail(response)}")
    if response.status_code != 200:
        raise UpstreamError(f"Inventory answered {response.status_code}: {_detail(response)}")
    return response.json()


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", ""))
    except ValueError:
        return ""
