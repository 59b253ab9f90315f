"""The IdP's URL map. OAuth endpoints are django-oauth-toolkit's views, mounted under the names DOT reverses."""

from django.contrib import admin
from django.urls import include, path
from django.views.decorators.cache import never_cache
from oauth2_provider import views as dot

from accounts.views.authorize import ConsentAuthorizationView
from audit import views as audit_views
from idp import discovery, health, introspection, jwks, token_endpoint

oauth_patterns = (
    [
        path("authorize/", ConsentAuthorizationView.as_view(), name="authorize"),
        path("token/", token_endpoint.TokenView.as_view(), name="token"),
        path("revoke/", token_endpoint.RevokeTokenView.as_view(), name="revoke-token"),
        path("introspect/", introspection.introspect, name="introspect"),
        path("userinfo/", dot.UserInfoView.as_view(), name="user-info"),
        # The confirmation page carries a CSRF token and the logout request: never cached.
        path("logout/", never_cache(dot.RPInitiatedLogoutView.as_view()), name="rp-initiated-logout"),
    ],
    "oauth2_provider",
)

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", audit_views.metrics_view, name="metrics"),
    path(".well-known/openid-configuration", discovery.openid_configuration, name="openid-configuration"),
    path(".well-known/oauth-authorization-server", discovery.openid_configuration, name="oauth-metadata"),
    path(".well-known/jwks.json", jwks.jwks, name="jwks"),
    path("o/", include(oauth_patterns)),
    path("api/", include("idp.api.urls")),  # the first-party cookie token API
    path("", include("accounts.urls")),
    path("admin/", admin.site.urls),
]
