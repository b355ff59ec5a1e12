"""bake: bakes each assembled pizza for the time it was given, then hands it to delivery.

bake also decides each race between a customer's cancel and the oven, in its own transaction:
an order is cancelled if and only if its cancel reaches bake before the pizza is out of the
oven (before bake writes 300). A cancel that comes first is kept in bake's state until the
pizza does; one that comes while the pizza is in the oven withdraws the baking (the runtime
handles cancels at once, see `KitchenService.interrupting`); one that comes later is too late.
"""

from __future__ import annotations

import logging
from typing import Any

from pizzashop.config import Settings
from pizzashop.contract import (
    SERVICES,
    CancelRequested,
    Event,
    PizzaAssembled,
    PizzaBaked,
    Status,
    StatusChanged,
    Topic,
)
from pizzashop.service import HANDLED, NOTHING_TO_DO, KitchenService, Overdue, State, Work

log = logging.getLogger("pizzashop.bake")

CANCEL_REQUESTED = "cancel-requested"  # the cancel came before the pizza: waiting for it


def bake(event: Event, state: State) -> Work:
    match event:
        case PizzaAssembled():
            return pizza_assembled(event, state)
        case CancelRequested():
            return cancel_requested(event, state)
    raise TypeError(f"bake does not take {type(event).__name__}")


def pizza_assembled(event: PizzaAssembled, state: State) -> Work:
    order_id = event.order_id
    known = state.get(order_id)
    if known == HANDLED:
        log.info("Order '%s' was in the oven before: ignoring it this time", order_id)
        return NOTHING_TO_DO
    if known == CANCEL_REQUESTED:
        log.info("Order '%s' was cancelled before it went into the oven", order_id)
        return cancelled(order_id)
    log.info("Preparing order '%s', baking time is %d second(s)", order_id, event.baking_time)
    to_delivery: list[Event] = [
        PizzaBaked(order_id),
        StatusChanged(order_id, Status.OUT_FOR_DELIVERY),
    ]
    done = f"Order '{order_id}' is baked!"
    return Work(to_delivery, event.baking_time, state={order_id: HANDLED}, done_message=done)


def cancel_requested(event: CancelRequested, state: State) -> Work:
    order_id = event.order_id
    known = state.get(order_id)
    if known == CANCEL_REQUESTED:
        log.info("Order '%s' was asked to be cancelled before: ignoring it this time", order_id)
        return NOTHING_TO_DO
    if known == HANDLED:
        # In the oven, or out of it: which one, only the runtime knows. In the oven, the
        # baking is withdrawn and the order cancelled; out of it, the cancel is too late.
        done = f"Order '{order_id}' taken out of the oven: cancelled"
        return Work(cancelled(order_id).outputs, withdraws=True, done_message=done)
    log.info("Order '%s' is cancelled before its pizza came: it will not be baked", order_id)
    return Work(state={order_id: CANCEL_REQUESTED})


def cancelled(order_id: str) -> Work:
    return Work([StatusChanged(order_id, Status.CANCELLED)], state={order_id: HANDLED})


def overdue(order_id: str, value: Any, waited: float, forget_after: float) -> Overdue | None:
    """A cancel whose pizza never came (its order was not on the menu, or never placed) is
    forgotten after `forget_after` seconds, as handled orders are."""
    if value == CANCEL_REQUESTED and waited >= forget_after:
        log.info("Order '%s': its pizza never came after its cancel; forgetting it", order_id)
        return Overdue()
    return None


def build(settings: Settings) -> KitchenService:
    handled = frozenset({Status.OUT_FOR_DELIVERY, Status.CANCELLED})
    forget_after = settings.remember_orders_for
    return KitchenService(
        "bake",
        SERVICES["bake"],
        bake,
        keeps_state=True,
        handled_statuses=handled,
        expire=lambda order_id, value, waited: overdue(order_id, value, waited, forget_after),
        expire_after=forget_after,
        interrupting=(Topic.CANCEL,),
    )
