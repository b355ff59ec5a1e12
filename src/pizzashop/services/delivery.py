"""delivery: learns of each order early (`pizza-ordered`) and delivers it once baked.

Either event may arrive first. What delivery knows about orders in the works is its state,
kept in a compacted Kafka topic, so it survives restarts and moves with its partitions.
"""

from __future__ import annotations

import logging

from pizzashop.contract import (
    SERVICES,
    Event,
    OrderPlaced,
    PizzaBaked,
    Status,
    StatusChanged,
    menu_errors,
)
from pizzashop.service import HANDLED, NOTHING_TO_DO, KitchenService, State, Work

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


def build(_settings: object) -> KitchenService:
    handled = frozenset({Status.DELIVERED})
    return KitchenService(
        "delivery", SERVICES["delivery"], delivery, keeps_state=True, handled_statuses=handled
    )
