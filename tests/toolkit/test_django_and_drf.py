"""The Django middleware, DRF's JWTAuthentication and the HasRole/HasScope permissions, on real requests."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.test import RequestFactory
from idp_resource_server import Claims
from idp_resource_server.django_conf import django_validator
from idp_resource_server.drf import HasRole, HasScope, JWTAuthentication, TokenUser, exception_handler
from idp_resource_server.middleware import BearerTokenMiddleware
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from tests.toolkit.conftest import AUDIENCE, rsa_key


@pytest.fixture(autouse=True)
def resource_server(settings, issuer):
    settings.IDP_RESOURCE_SERVER = {"ISSUER": issuer.issuer, "AUDIENCE": AUDIENCE, "REALM": "orders",
                                    "EXEMPT_PATHS": ["/healthz"]}
    return settings


def _view(*permissions):
    class View(APIView):
        authentication_classes = [JWTAuthentication]
        permission_classes = list(permissions) or [IsAuthenticated]

        def get_exception_handler(self):
            return exception_handler

        def get(self, request):
            return Response({"user": str(request.user), "client_id": request.auth.client_id,
                             "is_token_user": isinstance(request.user, TokenUser),
                             "roles": sorted(request.user.roles), "scopes": sorted(request.user.scopes)})

    return View.as_view()


def _get(view, token=None, authorization=None):
    headers = {}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if authorization:
        headers["HTTP_AUTHORIZATION"] = authorization
    response = view(APIRequestFactory().get("/admin/orders", **headers))
    response.render()
    return response


# --- DRF authentication. ---------------------------------------------------------------------------------------------


def test_drf_view_answers_a_valid_token_with_the_token_user(mint):
    response = _get(_view(), mint())
    assert response.status_code == 200
    assert response.data == {"user": "5b0a3f8e-0000-4000-8000-00000000a11c", "client_id": "orders-web",
                              "is_token_user": True, "roles": ["admin"], "scopes": ["openid", "orders:read"]}


def test_drf_view_without_a_token_answers_401_with_a_bare_bearer_challenge(mint):
    response = _get(_view())
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="orders"'


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer not a token", "Bearer abc\"def"],
                         ids=["no-token", "spaces", "quote"])
def test_drf_view_with_a_malformed_bearer_header_answers_invalid_token(authorization):
    response = _get(_view(), authorization=authorization)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_drf_view_with_a_forged_token_answers_401_invalid_token(mint):
    response = _get(_view(), mint(key=rsa_key()))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="orders", error="invalid_token", error_description="')
    assert response.data["detail"].code == "unknown_key"


def test_drf_view_with_a_token_for_another_service_answers_401(mint):
    response = _get(_view(), mint(aud="https://inventory.example.com"))
    assert response.status_code == 401
    assert "another audience" in response["WWW-Authenticate"]


def test_drf_view_answers_503_when_the_issuers_keys_cannot_be_had(issuer, mint):
    issuer.down = True
    response = _get(_view(), mint())
    assert response.status_code == 503
    assert response.data["detail"].code == "keys_unavailable"


def test_another_authorization_scheme_is_not_taken_for_a_token():
    response = _get(_view(), authorization="Basic YWxpY2U6c2VjcmV0")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="orders"'


# --- DRF permissions. ------------------------------------------------------------------------------------------------


def test_has_role_lets_a_holder_of_the_role_through(mint):
    assert _get(_view(HasRole("admin")), mint(roles=["admin"])).status_code == 200


def test_user_without_the_role_gets_403_with_an_insufficient_scope_challenge(mint):
    response = _get(_view(HasRole("admin")), mint(roles=["clerk"]))
    assert response.status_code == 403
    assert response.data["detail"] == "This request needs the role admin."
    assert response["WWW-Authenticate"].startswith('Bearer realm="orders", error="insufficient_scope"')


def test_has_role_without_a_token_answers_401_not_403():
    assert _get(_view(HasRole("admin"))).status_code == 401


def test_has_role_with_several_names_needs_every_one(mint):
    view = _view(HasRole("admin", "auditor"))
    assert _get(view, mint(roles=["admin"])).status_code == 403
    assert _get(view, mint(roles=["auditor", "admin"])).status_code == 200


def test_has_scope_checks_the_space_separated_scope_claim(mint):
    view = _view(HasScope("orders:read"))
    assert _get(view, mint(scope="openid orders:read")).status_code == 200
    assert _get(view, mint(scope="openid orders:readx")).status_code == 403
    assert _get(view, mint(scope=None)).status_code == 403


def test_scope_or_role_composes_with_drfs_operators(mint):
    view = _view(HasScope("inventory:read") | HasRole("admin"))
    assert _get(view, mint(scope="inventory:read", roles=[])).status_code == 200
    assert _get(view, mint(scope="", roles=["admin"])).status_code == 200
    assert _get(view, mint(scope="orders:read", roles=["clerk"])).status_code == 403


def test_a_role_or_scope_permission_without_names_refuses_to_exist():
    with pytest.raises(TypeError):
        HasRole()
    with pytest.raises(TypeError):
        HasScope("")


# --- The middleware. ------------------------------------------------------------------------------------------------


def _through_middleware(path="/orders", authorization=None):
    seen = {}

    def view(request):
        seen["claims"] = request.token_claims
        return JsonResponse({"ok": True})

    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = BearerTokenMiddleware(view)(RequestFactory().get(path, **headers))
    return response, seen


def test_middleware_sets_the_verified_claims_on_the_request(mint):
    response, seen = _through_middleware(authorization=f"Bearer {mint()}")
    assert response.status_code == 200
    assert isinstance(seen["claims"], Claims)
    assert seen["claims"].client_id == "orders-web"


def test_middleware_refuses_an_invalid_token_with_401_and_the_rfc_6750_challenge(mint):
    response, seen = _through_middleware(authorization=f"Bearer {mint(exp=1, iat=1, nbf=1)}")
    assert response.status_code == 401
    assert seen == {}
    assert json.loads(response.content) == {"error": "invalid_token",
                                            "error_description": "The access token has expired."}
    assert response["WWW-Authenticate"] == ('Bearer realm="orders", error="invalid_token", '
                                            'error_description="The access token has expired."')
    assert response["Cache-Control"] == "no-store"


def test_middleware_lets_a_request_without_token_through_unless_tokens_are_required(resource_server):
    response, seen = _through_middleware()
    assert response.status_code == 200
    assert seen["claims"] is None

    resource_server.IDP_RESOURCE_SERVER = {**resource_server.IDP_RESOURCE_SERVER, "REQUIRE_TOKEN": True}
    response, seen = _through_middleware()
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="orders"'
    assert seen == {}


def test_middleware_leaves_exempt_paths_alone_even_with_a_bad_token(resource_server):
    resource_server.IDP_RESOURCE_SERVER = {**resource_server.IDP_RESOURCE_SERVER, "REQUIRE_TOKEN": True}
    response, seen = _through_middleware("/healthz", authorization="Bearer garbage")
    assert response.status_code == 200
    assert seen["claims"] is None


def test_drf_authentication_reuses_the_claims_the_middleware_verified(mint, issuer):
    seen = {}

    class View(APIView):
        authentication_classes = [JWTAuthentication]

        def get(self, request):
            seen["auth"], seen["middleware"] = request.auth, request._request.token_claims
            return Response({})

    request = RequestFactory().get("/orders", HTTP_AUTHORIZATION=f"Bearer {mint()}")
    response = BearerTokenMiddleware(View.as_view())(request)
    assert response.status_code == 200
    assert seen["auth"] is seen["middleware"]


def test_settings_are_read_once_and_rebuilt_when_they_change(resource_server, issuer):
    first = django_validator()
    assert django_validator() is first
    resource_server.IDP_RESOURCE_SERVER = {"ISSUER": issuer.issuer, "AUDIENCE": ["https://inventory.example.com"]}
    assert django_validator() is not first
    assert django_validator().audiences == ("https://inventory.example.com",)


@pytest.mark.parametrize("value", [None, {"ISSUER": "http://127.0.0.1:1"}, {"ISSUER": "x", "AUDIENCE": "y",
                                                                            "COLOUR": "blue"}],
                         ids=["missing", "no-audience", "unknown-key"])
def test_a_missing_or_wrong_setting_is_improperly_configured(resource_server, value):
    resource_server.IDP_RESOURCE_SERVER = value
    with pytest.raises(ImproperlyConfigured):
        django_validator()


def test_middleware_answers_503_when_the_issuers_keys_cannot_be_had(issuer, mint):
    issuer.down = True
    response, seen = _through_middleware(authorization=f"Bearer {mint()}")
    assert response.status_code == 503
    assert "WWW-Authenticate" not in response
    assert json.loads(response.content) == {
        "error_description": "The issuer's signing keys are unavailable; try again shortly."}
    assert seen == {}
