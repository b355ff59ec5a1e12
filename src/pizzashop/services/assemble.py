"""assemble: takes an order off `pizza-ordered`, assembles it, and sends it to the oven."""

from __future__ import annotations

import hashlib
import logging

from pizzashop.contract import (
    SERVICES,
    Event,
    Order,
    OrderPlaced,
    PizzaAssembled,
    Status,
    StatusChanged,
)
from pizzashop.menu import menu_errors
from pizzashop.service import HANDLED, NOTHING_TO_DO, KitchenService, State, Work

log = logging.getLogger("pizzashop.assemble")


def assembling_and_baking_time(order: Order) -> tuple[int, int]:
    """Seconds to assemble (2 to 6) and to bake (10 to 19), the same for the same ingredients."""
    recipe = "|".join(sorted(order.ingredients()))
    digest = int.from_bytes(hashlib.sha256(recipe.encode()).digest()[:8], "big")
    return 2 + digest % 5, 10 + (digest // 5) % 10


def assemble(event: Event, state: State) -> Work:
    assert isinstance(event, OrderPlaced)
    if state.get(event.order_id) == HANDLED:
        log.info("Order '%s' was taken before: ignoring it this time", event.order_id)
        return NOTHING_TO_DO
    errors = menu_errors(event.order)
    if errors:
        log.warning(
            "Rejecting order '%s': %s",
            event.order_id,
            "; ".join(f"{field}: {problem}" for field, problem in errors.items()),
        )
        return Work(
            outputs=[StatusChanged(event.order_id, Status.INVALID_ORDER)],
            state={event.order_id: HANDLED},
        )
    assembling, baking = assembling_and_baking_time(event.order)
    log.info("Preparing order '%s', assembling time is %d second(s)", event.order_id, assembling)
    to_the_oven: list[Event] = [
        PizzaAssembled(event.order_id, baking),
        StatusChanged(event.order_id, Status.IN_OVEN),
    ]
    done = f"Order '{event.order_id}' is assembled!"
    return Work(to_the_oven, assembling, state={event.order_id: HANDLED}, done_message=done)


def build(_settings: object) -> KitchenService:
    handled = frozenset({Status.IN_OVEN, Status.INVALID_ORDER})
    return KitchenService("assemble", SERVICES["assemble"], assemble, handled_statuses=handled)
