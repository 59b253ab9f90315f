"""Routes of the cookie token API, mounted at /api/ under the namespace idp_api."""

from django.urls import path

from idp.api import views

app_name = "idp_api"

urlpatterns = [
    path("auth/csrf", views.csrf, name="csrf"),
    path("auth/login", views.login, name="login"),
    path("auth/refresh", views.refresh, name="refresh"),
    path("auth/logout", views.logout, name="logout"),
    path("me", views.MeView.as_view(), name="me"),
]
