"""Inventory endpoints; each view names what it requires in one line."""

from idp_resource_server.drf import HasRole, HasScope
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from examples.caller import caller

# The example's whole warehouse: stock per SKU.
STOCK = {"SKU-1": 12, "SKU-2": 0, "SKU-3": 140}


class Profile(APIView):
    """GET /profile: any valid token for this service."""

    def get(self, request):
        return Response(caller(request.auth))


class AdminStock(APIView):
    """GET /admin/stock: the whole warehouse, for the role admin only."""

    permission_classes = [HasRole("admin")]

    def get(self, request):
        return Response({"stock": STOCK, "caller": caller(request.auth)})


class Stock(APIView):
    """GET /stock/<sku>: for services with the inventory:read scope (their own or a user's, exchanged) or admins."""

    permission_classes = [HasScope("inventory:read") | HasRole("admin")]

    def get(self, request, sku: str):
        if sku not in STOCK:
            raise NotFound(f"No stock record for {sku}.")
        return Response({"sku": sku, "quantity": STOCK[sku], "caller": caller(request.auth)})
