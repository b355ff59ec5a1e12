"""bake: bakes each assembled pizza for the time it was given, then hands it to delivery.

A pizza that reaches bake is never cancelled: assemble decides each race between a cancel and
the assembly (services/assemble.py), and an assembled pizza is too late to cancel.
"""

from __future__ import annotations

import logging

from pizzashop.config import Settings
from pizzashop.contract import SERVICES, Event, PizzaAssembled, PizzaBaked, Status, StatusChanged
from pizzashop.service import HANDLED, NOTHING_TO_DO, KitchenService, State, Work

log = logging.getLogger("pizzashop.bake")


def bake(event: Event, state: State) -> Work:
    assert isinstance(event, PizzaAssembled)
    order_id = event.order_id
    if state.get(order_id) == HANDLED:
        log.info("Order '%s' was in the oven before: ignoring it this time", order_id)
        return NOTHING_TO_DO
    log.info("Preparing order '%s', baking time is %d second(s)", order_id, event.baking_time)
    to_delivery: list[Event] = [
        PizzaBaked(order_id),
        StatusChanged(order_id, Status.OUT_FOR_DELIVERY),
    ]
    done = f"Order '{order_id}' is baked!"
    return Work(to_delivery, event.baking_time, state={order_id: HANDLED}, done_message=done)


def build(_settings: Settings) -> KitchenService:
    handled = frozenset({Status.OUT_FOR_DELIVERY})
    return KitchenService("bake", SERVICES["bake"], bake, handled_statuses=handled)
