"""bake: bakes each assembled pizza for the time it was given, then hands it to delivery."""

from __future__ import annotations

import logging

from pizzashop.contract import SERVICES, Event, PizzaAssembled, PizzaBaked, Status, StatusChanged
from pizzashop.service import HANDLED, NOTHING_TO_DO, KitchenService, State, Work

log = logging.getLogger("pizzashop.bake")


def bake(event: Event, state: State) -> Work:
    assert isinstance(event, PizzaAssembled)
    if state.get(event.order_id) == HANDLED:
        log.info("Order '%s' was in the oven before: ignoring it this time", event.order_id)
        return NOTHING_TO_DO
    log.info("Preparing order '%s', baking time is %d second(s)", event.order_id, event.baking_time)
    to_delivery: list[Event] = [
        PizzaBaked(event.order_id),
        StatusChanged(event.order_id, Status.OUT_FOR_DELIVERY),
    ]
    done = f"Order '{event.order_id}' is baked!"
    return Work(to_delivery, event.baking_time, state={event.order_id: HANDLED}, done_message=done)


def build(_settings: object) -> KitchenService:
    handled = frozenset({Status.OUT_FOR_DELIVERY})
    return KitchenService("bake", SERVICES["bake"], bake, handled_statuses=handled)
