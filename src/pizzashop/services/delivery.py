"""delivery: learns of each order early (`pizza-ordered`) and delivers it once baked.

Either event may arrive first. What delivery knows about orders in the works is its state,
kept in a compacted Kafka topic, so it survives restarts and moves with its partitions.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from pizzashop.config import Settings
from pizzashop.contract import SERVICES, Event, OrderPlaced, PizzaBaked, Status, StatusChanged
from pizzashop.menu import menu_errors
from pizzashop.service import HANDLED, NOTHING_TO_DO, KitchenService, Overdue, State, Work

log = logging.getLogger("pizzashop.delivery")

DELIVERY_SECONDS = 10
BAKED = "baked"  # baked before its early warning arrived: waiting for it


def delivery(event: Event, state: State) -> Work:
    if state.get(event.order_id) == HANDLED:
        log.info(
            "Order '%s' was delivered before: ignoring its %s", event.order_id, type(event).__name__
        )
        return NOTHING_TO_DO
    match event:
        case OrderPlaced():
            return early_warning(event, state)
        case PizzaBaked():
            return pizza_baked(event, state)
    raise TypeError(f"delivery does not take {type(event).__name__}")


def early_warning(event: OrderPlaced, state: State) -> Work:
    order_id = event.order_id
    if menu_errors(event.order):
        return NOTHING_TO_DO  # it will never be baked
    known = state.get(order_id)
    if isinstance(known, dict):
        log.info("Early warning for order '%s' came again: ignoring it", order_id)
        return NOTHING_TO_DO
    customer = {"customer_id": event.order.customer_id, "name": event.order.name}
    log.info(
        "Early warning to deliver order '%s' to customer_id '%s'", order_id, event.order.customer_id
    )
    if known == BAKED:
        return deliver(order_id, customer)
    return Work(state={order_id: customer})


def pizza_baked(event: PizzaBaked, state: State) -> Work:
    customer = state.get(event.order_id)
    if customer is None or customer == BAKED:
        log.info(
            "Order '%s' is baked before its early warning arrived: waiting for it", event.order_id
        )
        return Work(state={event.order_id: BAKED})
    return deliver(event.order_id, customer)


def deliver(order_id: str, customer: dict[str, str]) -> Work:
    log.info(
        "Delivering order '%s' for customer_id '%s', delivery time is %d second(s)",
        order_id,
        customer["customer_id"],
        DELIVERY_SECONDS,
    )
    delivered = [StatusChanged(order_id, Status.DELIVERED)]
    done = f"Order '{order_id}' delivered to customer_id '{customer['customer_id']}'"
    return Work(delivered, DELIVERY_SECONDS, state={order_id: HANDLED}, done_message=done)


def overdue(
    order_id: str, value: Any, waited: float, unknown_after: float, forget_after: float
) -> Overdue | None:
    """A baked pizza whose order has not come within `unknown_after` seconds is of an order
    never placed: parked. A customer whose pizza has not come in `forget_after` is forgotten
    (the order is stuck; `pizzashop retry` sends the order again with its baked pizza)."""
    if value == BAKED and waited >= unknown_after:
        reason = f"unknown order: not placed within {unknown_after:g}s of its baked pizza"
        return Overdue(PizzaBaked(order_id), reason)
    if isinstance(value, dict) and waited >= forget_after:
        return Overdue()
    return None


def build(settings: Settings) -> KitchenService:
    handled = frozenset({Status.DELIVERED})
    return KitchenService(
        "delivery",
        SERVICES["delivery"],
        delivery,
        keeps_state=True,
        handled_statuses=handled,
        expire=functools.partial(
            overdue, unknown_after=settings.stuck_after, forget_after=settings.remember_orders_for
        ),
        expire_after=min(settings.stuck_after, settings.remember_orders_for),
    )
