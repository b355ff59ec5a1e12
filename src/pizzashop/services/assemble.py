"""assemble: takes an order off `pizza-ordered`, has the pantry reserve its ingredients, then
assembles it and sends it to the oven.

assemble also decides each race between a customer's cancel and the assembly, in its own
transaction: an order is cancelled if and only if its cancel reaches assemble before the
pizza is assembled (before assemble writes 200). A cancel that comes first is kept until the
order does; one that comes while the order waits for the pantry releases the reservation;
one that comes during the assembly withdraws it (the runtime handles cancels at once, see
`KitchenService.interrupting`) and releases too; one that comes later is too late, and the
ingredients on the pizza stay used. Every reservation ends once: used by the assembly itself
(its record on `pizza-assembled`, in the same transaction; the pantry is not asked, as a use
changes no level), or released.

With stock not counted (`count_stock` off) assemble asks the pantry nothing: it assembles
every order on the menu at once, and a cancel has no reservation to release.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from pizzashop.config import Settings
from pizzashop.contract import (
    SERVICES,
    CancelRequested,
    EndReservation,
    Event,
    OrderPlaced,
    PizzaAssembled,
    ReservationDecided,
    ReserveIngredients,
    Status,
    StatusChanged,
    Topic,
)
from pizzashop.menu import menu_errors
from pizzashop.service import HANDLED, NOTHING_TO_DO, KitchenService, Overdue, State, Work

log = logging.getLogger("pizzashop.assemble")

RESERVING = "reserving"  # asked the pantry for the order's ingredients: waiting for its answer
CANCEL_REQUESTED = "cancel-requested"  # the cancel came before the order: waiting for it


def assembling_and_baking_time(ingredients: tuple[str, ...]) -> tuple[int, int]:
    """Seconds to assemble (2 to 6) and to bake (10 to 19), the same for the same ingredients."""
    recipe = "|".join(sorted(ingredients))
    digest = int.from_bytes(hashlib.sha256(recipe.encode()).digest()[:8], "big")
    return 2 + digest % 5, 10 + (digest // 5) % 10


def assemble(event: Event, state: State, count_stock: bool = True) -> Work:
    match event:
        case OrderPlaced():
            return order_placed(event, state, count_stock)
        case ReservationDecided():
            return reservation_decided(event, state)
        case CancelRequested():
            return cancel_requested(event, state, count_stock)
    return NOTHING_TO_DO  # a reservation's release, which the pantry tells the status service


def order_placed(event: OrderPlaced, state: State, count_stock: bool) -> Work:
    order_id, known = event.order_id, state.get(event.order_id)
    if known in (HANDLED, RESERVING):
        log.info("Order '%s' was taken before: ignoring it this time", order_id)
        return NOTHING_TO_DO
    if known == CANCEL_REQUESTED:
        log.info("Order '%s' was cancelled before it was assembled", order_id)
        return Work([StatusChanged(order_id, Status.CANCELLED)], state={order_id: HANDLED})
    errors = menu_errors(event.order)
    if errors:
        log.warning(
            "Rejecting order '%s': %s",
            order_id,
            "; ".join(f"{field}: {problem}" for field, problem in errors.items()),
        )
        return Work(
            outputs=[StatusChanged(order_id, Status.INVALID_ORDER)], state={order_id: HANDLED}
        )
    if not count_stock:
        return assembled(order_id, event.order.ingredients())
    ask = ReserveIngredients(order_id, event.order.ingredients())
    return Work([ask], state={order_id: RESERVING})


def reservation_decided(event: ReservationDecided, state: State) -> Work:
    order_id = event.order_id
    if state.get(order_id) != RESERVING:
        log.info("Order '%s' is decided already: its reservation changes nothing", order_id)
        return NOTHING_TO_DO
    if not event.reserved:
        log.info("Order '%s' cannot be made: sold out of %s", order_id, event.sold_out)
        return Work([StatusChanged(order_id, Status.SOLD_OUT)], state={order_id: HANDLED})
    return assembled(order_id, event.ingredients)


def assembled(order_id: str, ingredients: tuple[str, ...]) -> Work:
    """The pizza assembled and sent to the oven; its reservation, if it has one, used by that."""
    assembling, baking = assembling_and_baking_time(ingredients)
    log.info("Preparing order '%s', assembling time is %d second(s)", order_id, assembling)
    to_the_oven: list[Event] = [
        PizzaAssembled(order_id, baking),
        StatusChanged(order_id, Status.IN_OVEN),
    ]
    done = f"Order '{order_id}' is assembled!"
    return Work(to_the_oven, assembling, state={order_id: HANDLED}, done_message=done)


def cancel_requested(event: CancelRequested, state: State, count_stock: bool) -> Work:
    order_id, known = event.order_id, state.get(event.order_id)
    if known == CANCEL_REQUESTED:
        log.info("Order '%s' was asked to be cancelled before: ignoring it this time", order_id)
        return NOTHING_TO_DO
    if known == RESERVING:
        log.info("Order '%s' is cancelled while its ingredients were reserved", order_id)
        return cancelled(order_id)
    if known == HANDLED:
        # Being assembled, or done: which one, only the runtime knows. Being assembled, the
        # assembly is withdrawn and the order cancelled; done, the cancel is too late.
        done = f"Order '{order_id}' taken off the counter: cancelled"
        outputs = cancelled(order_id, release=count_stock).outputs
        return Work(outputs, withdraws=True, done_message=done)
    log.info("Order '%s' is cancelled before it came: it will not be made", order_id)
    return Work(state={order_id: CANCEL_REQUESTED})


def cancelled(order_id: str, release: bool = True) -> Work:
    """Cancelled, and with `release` whatever the pantry holds for it goes back (it holds
    nothing when it found the order sold out: it knows, and ends nothing)."""
    outputs: list[Event] = [StatusChanged(order_id, Status.CANCELLED)]
    if release:
        outputs.append(EndReservation(order_id, used=False))
    return Work(outputs, state={order_id: HANDLED})


def overdue(order_id: str, value: Any, waited: float, forget_after: float) -> Overdue | None:
    """A cancel whose order never came is forgotten after `forget_after` seconds, as handled
    orders are."""
    if value == CANCEL_REQUESTED and waited >= forget_after:
        log.info("Order '%s': never came after its cancel; forgetting it", order_id)
        return Overdue()
    return None


def build(settings: Settings) -> KitchenService:
    handled = frozenset({Status.IN_OVEN, Status.INVALID_ORDER, Status.SOLD_OUT, Status.CANCELLED})
    forget_after, count_stock = settings.remember_orders_for, settings.count_stock
    return KitchenService(
        "assemble",
        SERVICES["assemble"],
        lambda event, state: assemble(event, state, count_stock),
        keeps_state=True,
        handled_statuses=handled,
        expire=lambda order_id, value, waited: overdue(order_id, value, waited, forget_after),
        expire_after=forget_after,
        interrupting=(Topic.CANCEL,),
    )
