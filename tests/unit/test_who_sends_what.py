"""`contract.PRODUCES`, who sends what, held true against the code that sends: each handler's
outputs, the watchdog's marks, the command side's orders and cancels, the operator's retries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from pizzashop.commands.desk import OrderDesk
from pizzashop.commands.ordering import PlaceOrder, events_to_resume
from pizzashop.contract import (
    COMMAND_SIDE,
    OPERATOR,
    PRODUCES,
    SERVICES,
    TOPIC_OF,
    EndReservation,
    Event,
    OrderPlaced,
    PizzaAssembled,
    PizzaBaked,
    ReservationDecided,
    ReserveIngredients,
    Restock,
    Topic,
)
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.service import State, Work
from pizzashop.services.assemble import assemble
from pizzashop.services.bake import bake
from pizzashop.services.delivery import delivery
from pizzashop.services.pantry import ORDER, pantry
from pizzashop.services.status import orders_to_mark_stuck
from tests.unit.shop_events import T0, an_order, placed, progress
from tests.unit.test_web import GOOD, AcknowledgingTaker

MINUTE = 60_000


@pytest.fixture
def read_model(tmp_path: Path) -> Iterator[ReadModel]:
    model = open_readmodel(f"sqlite:///{tmp_path / 'rm.sqlite3'}")
    yield model
    model.close()


def topics_of(events: Iterable[Event]) -> set[Topic]:
    return {TOPIC_OF[type(event)] for event in events}


def sent_by(part: str) -> set[Topic]:
    """What the contract says `part` sends, besides the dead letters (checked on their own)."""
    return set(PRODUCES[part]) - {Topic.DEAD_LETTER}


def test_assemble_sends_what_the_contract_says() -> None:
    asked = assemble(placed("a"), {})
    ingredients = an_order().ingredients()
    made = assemble(ReservationDecided("a", ingredients), {"a": "reserving"})
    off_the_menu = assemble(OrderPlaced("b", an_order(sauce="Ketchup"), T0), {})
    outputs = [*asked.outputs, *made.outputs, *off_the_menu.outputs]
    assert topics_of(outputs) == sent_by("assemble")


def test_the_pantry_sends_what_the_contract_says() -> None:
    def start(_: str) -> int:
        return 1

    def ask(event: Event, state: State) -> Work:
        return pantry(event, state, start)

    reserved = ask(ReserveIngredients("a", ("Tomato",), 2), {})
    released = ask(
        EndReservation("a", used=False), {ORDER + "a": {"ingredients": ["Tomato"], "partition": 2}}
    )
    sold_out = ask(ReserveIngredients("b", ("Tomato", "Tomato"), 2), {})
    restocked = ask(Restock("r", "Tomato", 5), {})
    outputs = [*reserved.outputs, *released.outputs, *sold_out.outputs, *restocked.outputs]
    assert topics_of(outputs) == sent_by("pantry")


def test_bake_sends_what_the_contract_says() -> None:
    baked = bake(PizzaAssembled("a", 10), {})
    assert topics_of(baked.outputs) == sent_by("bake")


def test_delivery_sends_what_the_contract_says() -> None:
    warned = delivery(placed("a"), {})
    delivered = delivery(PizzaBaked("a"), dict(warned.state))
    assert topics_of([*warned.outputs, *delivered.outputs]) == sent_by("delivery")


def test_status_sends_what_the_contract_says(read_model: ReadModel) -> None:
    read_model.writer.apply(progress("stalled")[:2], {})
    marks = orders_to_mark_stuck(read_model.watchdog, now=T0 + 2 * MINUTE, stuck_after_ms=MINUTE)
    assert marks, "a stalled order is marked stuck"
    assert topics_of(mark.event for mark in marks) == sent_by("status")


def test_every_service_may_park_what_it_cannot_handle() -> None:
    # The runtime parks, for every service alike, an event that does not decode or that its
    # handler fails on (runtime/kitchen_work.py, runtime/loop.py).
    assert all(Topic.DEAD_LETTER in PRODUCES[service] for service in SERVICES), PRODUCES


def test_the_command_side_sends_orders_and_cancels(read_model: ReadModel) -> None:
    taker = AcknowledgingTaker()
    desk = OrderDesk(taker, "a secret", cancel_wait=0.0)  # type: ignore[arg-type]  # a stand-in for the OrderTaker
    placement = asyncio.run(desk.place(PlaceOrder("c1", GOOD, "key-1")))
    read_model.writer.apply([placement.placed], {})
    view = read_model.orders.get_order(placement.placed.order_id)
    assert view is not None
    asyncio.run(desk.cancel(view))
    asyncio.run(desk.restock("Mushroom", 10))
    sent = [*taker.placed, *(event for event, _ in taker.sent)]
    assert topics_of(sent) == sent_by(COMMAND_SIDE)


def test_the_operator_sends_again_what_stopped(read_model: ReadModel) -> None:
    stopped = {"received": 1, "in-oven": 2, "out": 3}
    for order_id, steps in stopped.items():
        read_model.writer.apply(progress(order_id)[:steps], {})
    views = [read_model.orders.get_order(order_id) for order_id in stopped]
    resumed = [event for view in views if view for event in events_to_resume(view)]
    assert topics_of(resumed) <= sent_by(OPERATOR)
    # `dlq replay` sends a parked record back to the topic it was read from: any a service reads.
    assert {topic for read in SERVICES.values() for topic in read} <= sent_by(OPERATOR)


def test_every_topic_has_a_sender_and_every_sender_is_a_part_of_the_shop() -> None:
    assert {topic for sent in PRODUCES.values() for topic in sent} == set(Topic)
    assert set(PRODUCES) == {COMMAND_SIDE, *SERVICES, OPERATOR}
