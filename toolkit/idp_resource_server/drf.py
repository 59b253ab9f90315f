"""Django REST framework: Bearer authentication with the toolkit's validator, and role and scope permissions.

    authentication_classes = [JWTAuthentication]
    permission_classes = [HasRole("admin")]                       # every named role
    permission_classes = [HasScope("inventory:read") | HasRole("admin")]

`request.user` is a TokenUser (not a database user) and `request.auth` the verified Claims. Set
`REST_FRAMEWORK["EXCEPTION_HANDLER"] = "idp_resource_server.drf.exception_handler"` so that a 403 for a missing
role or scope carries RFC 6750's `insufficient_scope` challenge as well.
"""

from __future__ import annotations

import logging

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from idp_resource_server.bearer import bearer_token, www_authenticate
from idp_resource_server.django_conf import django_validator, resource_server_settings
from idp_resource_server.errors import INSUFFICIENT_SCOPE, InsufficientScope, TokenError, TokenMissing
from idp_resource_server.validator import Claims

logger = logging.getLogger("idp_resource_server")
_ERROR_ATTRIBUTE = "_idp_resource_server_error"


class TokenUser:
    """The caller as its token describes it: `sub` as id and username, never a database row."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.pk = self.id = self.username = claims.subject

    def __str__(self) -> str:
        return self.username

    @property
    def roles(self) -> frozenset[str]:
        return self.claims.roles

    @property
    def scopes(self) -> frozenset[str]:
        return self.claims.scopes


class KeysUnavailableError(exceptions.APIException):
    status_code = 503
    default_detail = "The issuer's signing keys are unavailable; try again shortly."
    default_code = "keys_unavailable"


class JWTAuthentication(BaseAuthentication):
    """Authenticates `Authorization: Bearer <RFC 9068 access token>` locally, against the issuer's JWKS.

    No token: not authenticated here (DRF answers 401 with a bare Bearer challenge). A bad token: 401 with
    `error="invalid_token"`. Reuses the claims BearerTokenMiddleware already verified, if it ran.
    """

    def authenticate(self, request):
        django_request = request._request
        claims = getattr(django_request, "token_claims", None)
        if claims is None:
            try:
                claims = django_validator().validate(bearer_token(request.headers.get("Authorization")))
            except TokenMissing:
                return None
            except TokenError as error:
                logger.info("Refused an access token for %s: %s", request.path, error.reason)
                setattr(django_request, _ERROR_ATTRIBUTE, error)
                if error.status == 503:
                    raise KeysUnavailableError() from None
                raise exceptions.AuthenticationFailed(error.description, code=error.reason) from None
            django_request.token_claims = claims
        return TokenUser(claims), claims

    def authenticate_header(self, request) -> str:
        error = getattr(request._request, _ERROR_ATTRIBUTE, None)
        return www_authenticate(error, realm=resource_server_settings().realm)


class _ClaimRequirement(BasePermission):
    """Grants a request whose verified token has every value in `required`; `HasX("a", "b")` makes the subclass."""

    required: frozenset[str] = frozenset()
    what = ""
    code = INSUFFICIENT_SCOPE

    def __new__(cls, *values: str):
        if not values:
            if not cls.required:
                # Fail closed: `permission_classes = [HasRole]` without names would let every caller through.
                raise TypeError(f"Name what is required: {cls.__name__}('...').")
            return super().__new__(cls)
        if not all(isinstance(value, str) and value for value in values):
            raise TypeError(f"{cls.__name__} takes one or more non-empty names.")
        # A new permission class, so DRF can instantiate it and compose it with & | ~ like any other.
        name = f"{cls.__name__}({', '.join(values)})"
        return type(cls)(name, (cls,), {"required": frozenset(values), "__module__": cls.__module__,
                                        "__qualname__": name})

    def granted(self, claims: Claims) -> frozenset[str]:
        raise NotImplementedError

    @property
    def message(self) -> str:
        return f"This request needs the {self.what} {' '.join(sorted(self.required))}."

    def has_permission(self, request, view) -> bool:
        claims = request.auth
        if not isinstance(claims, Claims):
            return False  # not authenticated by a token: DRF answers 401, not 403
        return self.required <= self.granted(claims)


class HasRole(_ClaimRequirement):
    """The token's `roles` (RFC 9068 §2.2.3.1) include every named role."""

    what = "role"

    def granted(self, claims: Claims) -> frozenset[str]:
        return claims.roles


class HasScope(_ClaimRequirement):
    """The token's `scope` (RFC 9068 §2.2.3) includes every named scope."""

    what = "scope"

    def granted(self, claims: Claims) -> frozenset[str]:
        return claims.scopes


def exception_handler(exc, context):
    """DRF's handler, plus RFC 6750 §3.1's `insufficient_scope` challenge on a 403 to a token-authenticated call."""
    # Imported here: rest_framework.views reads DEFAULT_AUTHENTICATION_CLASSES on import, which names this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    request = context.get("request")
    if (response is not None and isinstance(exc, exceptions.PermissionDenied) and request is not None
            and isinstance(request.auth, Claims)):
        error = InsufficientScope(INSUFFICIENT_SCOPE, str(exc.detail))
        response["WWW-Authenticate"] = www_authenticate(error, realm=resource_server_settings().realm)
    return response
