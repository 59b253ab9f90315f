"""Orders endpoints; each view names what it requires in one line."""

from idp_resource_server import bearer_token
from idp_resource_server.drf import HasRole, HasScope
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from examples.caller import caller
from examples.orders import inventory

# The example's order book.
ORDERS = {
    1: {"id": 1, "sku": "SKU-1", "quantity": 2},
    2: {"id": 2, "sku": "SKU-2", "quantity": 1},
    3: {"id": 3, "sku": "SKU-9", "quantity": 5},
}


def _order(order_id: int) -> dict:
    try:
        return ORDERS[order_id]
    except KeyError:
        raise NotFound(f"No order {order_id}.") from None


class Profile(APIView):
    """GET /profile: any valid token for this service."""

    def get(self, request):
        return Response(caller(request.auth))


class AdminOrders(APIView):
    """GET /admin/orders: every order, for the role admin only."""

    permission_classes = [HasRole("admin")]

    def get(self, request):
        return Response({"orders": list(ORDERS.values()), "caller": caller(request.auth)})


class OrderStock(APIView):
    """GET /orders/<id>/stock: asks inventory with orders' own client-credentials token."""

    permission_classes = [HasScope("orders:read")]

    def get(self, request, order_id: int):
        order = _order(order_id)
        stock = inventory.stock_of(order["sku"], access_token=inventory.service_token())
        return Response({"order": order, "stock": stock})


class OrderStockAsUser(APIView):
    """GET /orders/<id>/stock-as-user: asks inventory on behalf of the caller, with an exchanged token."""

    permission_classes = [HasScope("orders:read")]

    def get(self, request, order_id: int):
        order = _order(order_id)
        subject_token = bearer_token(request.headers.get("Authorization"))
        stock = inventory.stock_of(order["sku"], access_token=inventory.exchanged_token(subject_token))
        return Response({"order": order, "stock": stock})
