"""Routes of the inventory service."""

from django.urls import path

from examples.health import healthz
from examples.inventory import views

urlpatterns = [
    path("healthz", healthz),
    path("profile", views.Profile.as_view()),
    path("admin/stock", views.AdminStock.as_view()),
    path("stock/<str:sku>", views.Stock.as_view()),
]
