"""pantry: owns each ingredient's stock and decides every ask of it, one at a time.

All asks come on `pizza-pantry`, which has one partition, so one instance decides them in the
order they were asked (a single decider): an order's ingredients are reserved all together or
not at all, with nothing to undo. Its state (each ingredient's level, each reservation and how
it ended) is kept in its changelog topic in the same transaction as its answers, and rebuilt
from there by whichever instance owns the partition next. docs/architecture/pantry.md says why
this design, and what the others would cost.

A reservation is used by the assembly itself: assemble writes the pizza to `pizza-assembled`
in the transaction that takes the pantry's answer, and a use changes no level, so the pantry is
not asked. It is asked to release a reservation (a cancel before the assembly), and still takes
a "use" ask from whoever sends one. A reservation it holds stays releasable for
`remember_orders_for`, far longer than any order waits for its assembly, then is forgotten.

State keys: `stock:<ingredient>` holds a level (absent: the starting stock), `order:<id>` a
reservation (`{"ingredients": [...], "partition": p}` while it holds; then how it ended), and
`restock:<id>` a restock counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from pizzashop.config import Settings
from pizzashop.contract import (
    SERVICES,
    EndReservation,
    Event,
    ReservationDecided,
    ReservationEnded,
    ReserveIngredients,
    Restock,
    StockLevel,
)
from pizzashop.menu import StartingStock, starting_stock
from pizzashop.service import NOTHING_TO_DO, KitchenService, Overdue, State, Work

log = logging.getLogger("pizzashop.pantry")

STOCK, ORDER, RESTOCK = "stock:", "order:", "restock:"
# How an order's entry ends; an order's entry, held or ended, is forgotten after
# `remember_orders_for` (see `overdue`).
USED, RELEASED, SOLD_OUT, RESTOCKED = "used", "released", "sold-out", "restocked"


def stock_left(state: State, ingredient: str, start: StartingStock) -> int:
    left = state.get(STOCK + ingredient)
    return start(ingredient) if left is None else int(left)


def pantry(event: Event, state: State, start: StartingStock) -> Work:
    match event:
        case ReserveIngredients():
            return reserve(event, state, start)
        case EndReservation():
            return end_reservation(event, state, start)
        case Restock():
            return restock(event, state, start)
    raise TypeError(f"the pantry does not take {type(event).__name__}")


def reserve(event: ReserveIngredients, state: State, start: StartingStock) -> Work:
    key, order_id = ORDER + event.order_id, event.order_id
    if key in state:
        log.info("Order '%s' was decided before: ignoring its ask this time", order_id)
        return NOTHING_TO_DO
    needed = Counter(event.ingredients)
    levels = {ingredient: stock_left(state, ingredient, start) for ingredient in needed}
    short = next((i for i in event.ingredients if levels[i] < needed[i]), None)
    if short is not None:
        log.info("Order '%s': sold out of %s, nothing reserved", order_id, short)
        answer = ReservationDecided(order_id, event.ingredients, short, event.partition)
        return Work([answer], state={key: SOLD_OUT})
    left = {ingredient: levels[ingredient] - n for ingredient, n in needed.items()}
    reservation = {"ingredients": list(event.ingredients), "partition": event.partition}
    answer = ReservationDecided(order_id, event.ingredients, None, event.partition)
    return Work(
        [answer, *(StockLevel(ingredient, n) for ingredient, n in left.items())],
        state={key: reservation, **{STOCK + i: n for i, n in left.items()}},
        done_message=f"Order '{order_id}': reserved {', '.join(event.ingredients)}",
    )


def end_reservation(event: EndReservation, state: State, start: StartingStock) -> Work:
    key, order_id = ORDER + event.order_id, event.order_id
    reservation = state.get(key)
    if not isinstance(reservation, dict):
        log.info("Order '%s' holds no reservation (%s): nothing to end", order_id, reservation)
        return NOTHING_TO_DO
    ingredients = tuple(reservation["ingredients"])
    ended = ReservationEnded(order_id, ingredients, event.used, reservation["partition"])
    if event.used:
        return Work([ended], state={key: USED})
    back = {i: stock_left(state, i, start) + n for i, n in Counter(ingredients).items()}
    return Work(
        [ended, *(StockLevel(ingredient, n) for ingredient, n in back.items())],
        state={key: RELEASED, **{STOCK + i: n for i, n in back.items()}},
        done_message=f"Order '{order_id}': released {', '.join(ingredients)}",
    )


def restock(event: Restock, state: State, start: StartingStock) -> Work:
    key = RESTOCK + event.restock_id
    if key in state:
        log.info("Restock '%s' was counted before: ignoring it this time", event.restock_id)
        return NOTHING_TO_DO
    level = stock_left(state, event.ingredient, start) + event.amount
    return Work(
        [StockLevel(event.ingredient, level)],
        state={key: RESTOCKED, STOCK + event.ingredient: level},
        done_message=f"Restocked {event.amount} {event.ingredient}: {level} left",
    )


def overdue(key: str, value: Any, waited: float, forget_after: float) -> Overdue | None:
    """An order's entry (a reservation, or how it ended) and a restock's are forgotten after
    `forget_after` seconds; levels stay."""
    if key.startswith((ORDER, RESTOCK)) and waited >= forget_after:
        return Overdue()
    return None


def build(settings: Settings) -> KitchenService:
    start = starting_stock(settings)
    forget_after = settings.remember_orders_for
    return KitchenService(
        "pantry",
        SERVICES["pantry"],
        lambda event, state: pantry(event, state, start),
        keeps_state=True,
        expire=lambda key, value, waited: overdue(key, value, waited, forget_after),
        expire_after=forget_after,
    )
