"""Events of orders on their way to the customer, built with the contract's classes."""

from __future__ import annotations

from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged

T0 = 1_700_000_000_000


def an_order(**changes: object) -> Order:
    """The seed's order (Italo's pepperoni with mushrooms), with any field changed."""
    fields = {"customer_id": "c1", "name": "Italo", "sauce": "Tomato", "cheese": "Mozzarella",
              "main_topping": "Pepperoni", "extra_toppings": ["Mushroom"]}  # fmt: skip
    return Order.model_validate({**fields, **changes})


def placed(order_id: str, customer: str = "c1", at: int = T0) -> OrderPlaced:
    return OrderPlaced(order_id, an_order(customer_id=customer), at)


def progress(order_id: str, at: int = T0) -> list[OrderPlaced | StatusChanged]:
    """Placed, in the oven, out for delivery, delivered: one millisecond apart."""
    return [
        placed(order_id, at=at),
        StatusChanged(order_id, Status.IN_OVEN, at + 1),
        StatusChanged(order_id, Status.OUT_FOR_DELIVERY, at + 2),
        StatusChanged(order_id, Status.DELIVERED, at + 3),
    ]


def stuck(order_id: str, at: int) -> StatusChanged:
    return StatusChanged(order_id, Status.STUCK, at)
