"""Routes of the orders service."""

from django.urls import path

from examples.health import healthz
from examples.orders import views

urlpatterns = [
    path("healthz", healthz),
    path("profile", views.Profile.as_view()),
    path("admin/orders", views.AdminOrders.as_view()),
    path("orders/<int:order_id>/stock", views.OrderStock.as_view()),
    path("orders/<int:order_id>/stock-as-user", views.OrderStockAsUser.as_view()),
]
