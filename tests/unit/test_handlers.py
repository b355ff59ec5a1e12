"""Each service's handler, with plain asserts and no broker."""

from __future__ import annotations

from pizzashop.config import Settings
from pizzashop.contract import (
    CancelRequested,
    EndReservation,
    Order,
    OrderPlaced,
    PizzaAssembled,
    PizzaBaked,
    ReservationDecided,
    ReserveIngredients,
    Status,
    StatusChanged,
)
from pizzashop.service import HANDLED, NOTHING_TO_DO, Overdue, State
from pizzashop.services.assemble import (
    CANCEL_REQUESTED,
    RESERVING,
    assemble,
    assembling_and_baking_time,
)
from pizzashop.services.assemble import build as build_assemble
from pizzashop.services.assemble import overdue as cancel_overdue
from pizzashop.services.bake import bake
from pizzashop.services.delivery import BAKED, DELIVERY_SECONDS, delivery, overdue
from pizzashop.services.pantry import overdue as pantry_overdue
from tests.unit.shop_events import an_order


def placed(order_id: str = "3c91b", **changes: object) -> OrderPlaced:
    return OrderPlaced(order_id, an_order(**changes), timestamp=1676235639159)


def statuses(work_outputs: object) -> list[Status]:
    return [e.status for e in work_outputs if isinstance(e, StatusChanged)]  # type: ignore[attr-defined]  # the helper takes any handler's Work


def test_times_follow_the_seed_ranges_and_depend_only_on_ingredients() -> None:
    def times(order: Order) -> tuple[int, int]:
        return assembling_and_baking_time(order.ingredients())

    for sauce in ("Tomato", "Pesto", "Hummus"):
        assembling, baking = times(an_order(sauce=sauce))
        assert 2 <= assembling <= 6 and 10 <= baking <= 19
    assert times(an_order(name="A")) == times(an_order(name="B"))
    reordered = an_order(extra_toppings=["Onion", "Mushroom"])
    assert times(reordered) == times(an_order(extra_toppings=["Mushroom", "Onion"]))


def reserved(order_id: str = "3c91b", sold_out: str | None = None) -> ReservationDecided:
    return ReservationDecided(order_id, an_order().ingredients(), sold_out)


def test_assemble_asks_the_pantry_then_sends_the_pizza_to_the_oven() -> None:
    state: State = {}
    asked = assemble(placed(), state)
    assert asked.outputs == [ReserveIngredients("3c91b", an_order().ingredients())]
    assert asked.seconds == 0 and not statuses(asked.outputs)
    apply_state(state, asked)
    assert state == {"3c91b": RESERVING}
    work = assemble(reserved(), state)
    assembling, baking = assembling_and_baking_time(an_order().ingredients())
    assert work.seconds == assembling
    assert PizzaAssembled("3c91b", baking) in work.outputs
    assert not any(isinstance(e, EndReservation) for e in work.outputs), "the assembly uses it"
    assert statuses(work.outputs) == [Status.IN_OVEN]


def test_assemble_ends_an_order_the_pantry_is_short_for_as_sold_out() -> None:
    state: State = {"3c91b": RESERVING}
    work = assemble(reserved(sold_out="Mushroom"), state)
    assert statuses(work.outputs) == [Status.SOLD_OUT] and work.seconds == 0
    assert not any(isinstance(e, PizzaAssembled | EndReservation) for e in work.outputs)
    assert work.state == {"3c91b": HANDLED}


def test_assemble_rejects_an_order_that_is_not_on_the_menu() -> None:
    work = assemble(placed(sauce="Ketchup"), {})
    assert work.seconds == 0
    assert statuses(work.outputs) == [Status.INVALID_ORDER]
    assert not any(isinstance(e, PizzaAssembled | ReserveIngredients) for e in work.outputs)


def test_bake_bakes_for_the_time_it_was_given() -> None:
    work = bake(PizzaAssembled("3c91b", 17), {})
    assert work.seconds == 17
    assert PizzaBaked("3c91b") in work.outputs
    assert statuses(work.outputs) == [Status.OUT_FOR_DELIVERY]


def apply_state(state: State, work: object) -> None:
    for key, value in work.state.items():  # type: ignore[attr-defined]  # the helper takes any handler's Work
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value


def test_delivery_learns_the_customer_then_delivers_once_baked() -> None:
    state: State = {}
    warning = delivery(placed(), state)
    assert not warning.outputs and warning.seconds == 0
    apply_state(state, warning)
    assert state["3c91b"]["name"] == "Italo"
    work = delivery(PizzaBaked("3c91b"), state)
    assert work.seconds == DELIVERY_SECONDS
    assert statuses(work.outputs) == [Status.DELIVERED]
    apply_state(state, work)
    assert state == {"3c91b": HANDLED}, "a delivered order is remembered as handled, nothing more"


def test_baked_before_ordered_still_delivers() -> None:
    state: State = {}
    waiting = delivery(PizzaBaked("3c91b"), state)
    assert not waiting.outputs
    apply_state(state, waiting)
    assert state == {"3c91b": BAKED}
    work = delivery(placed(), state)
    assert statuses(work.outputs) == [Status.DELIVERED]
    apply_state(state, work)
    assert state == {"3c91b": HANDLED}


def test_delivery_forgets_nothing_for_an_invalid_order() -> None:
    state: State = {}
    work = delivery(placed(sauce="Ketchup"), state)
    assert not work.outputs and dict(work.state) == {}


def test_assemble_makes_an_order_that_comes_twice_once() -> None:
    state: State = {}
    apply_state(state, assemble(placed(), state))
    assert assemble(placed(), state) is NOTHING_TO_DO, "a retry or a second producer's copy"
    apply_state(state, assemble(reserved(), state))
    assert state == {"3c91b": HANDLED}
    assert assemble(placed(), state) is NOTHING_TO_DO
    assert assemble(reserved(), state) is NOTHING_TO_DO, "the pantry's answer read again"


def test_bake_bakes_an_order_sent_twice_once() -> None:
    state: State = {}
    apply_state(state, bake(PizzaAssembled("3c91b", 17), state))
    assert bake(PizzaAssembled("3c91b", 17), state) is NOTHING_TO_DO


def test_delivery_ignores_a_second_early_warning_while_it_waits_for_the_pizza() -> None:
    state: State = {}
    apply_state(state, delivery(placed(), state))
    again = delivery(placed(name="Someone else"), state)
    assert again is NOTHING_TO_DO
    assert state["3c91b"]["name"] == "Italo", "the first copy of the order counts"


def test_a_delivered_order_coming_again_is_not_delivered_again() -> None:
    state: State = {}
    for event in (placed(), PizzaBaked("3c91b")):
        apply_state(state, delivery(event, state))
    assert state == {"3c91b": HANDLED}
    for event in (placed(), PizzaBaked("3c91b")):
        assert delivery(event, state) is NOTHING_TO_DO


def test_delivery_parks_a_baked_pizza_whose_order_never_came_and_forgets_a_stale_customer() -> None:
    def decide(value: object, waited: float) -> Overdue | None:
        return overdue("o-1", value, waited, unknown_after=120, forget_after=86_400)

    parked = decide(BAKED, 121)
    assert parked is not None and parked.park == PizzaBaked("o-1")
    assert "unknown order" in parked.reason
    assert decide(BAKED, 60) is None
    customer = {"customer_id": "c", "name": "Italo"}
    assert decide(customer, 121) is None, "a placed order waits for its pizza a day"
    assert decide(customer, 86_400) == Overdue()


def cancel(order_id: str = "3c91b") -> CancelRequested:
    return CancelRequested(order_id, timestamp=1676235639999)


def test_a_cancel_before_the_order_is_kept_and_the_order_then_cancelled_not_reserved() -> None:
    state: State = {}
    kept = assemble(cancel(), state)
    assert not kept.outputs and kept.state == {"3c91b": CANCEL_REQUESTED} and not kept.withdraws
    apply_state(state, kept)
    work = assemble(placed(), state)
    assert statuses(work.outputs) == [Status.CANCELLED]
    assert not any(isinstance(e, ReserveIngredients) for e in work.outputs), "nothing to reserve"
    apply_state(state, work)
    assert state == {"3c91b": HANDLED}
    assert assemble(placed(), state) is NOTHING_TO_DO, "its order coming again"


def test_a_cancel_while_the_pantry_decides_releases_what_it_reserves() -> None:
    state: State = {}
    apply_state(state, assemble(placed(), state))
    work = assemble(cancel(), state)
    assert statuses(work.outputs) == [Status.CANCELLED] and not work.withdraws
    assert EndReservation("3c91b", used=False) in work.outputs
    apply_state(state, work)
    assert assemble(reserved(), state) is NOTHING_TO_DO, "its reservation then changes nothing"


def test_a_cancel_asked_twice_before_the_order_is_kept_once() -> None:
    state: State = {}
    apply_state(state, assemble(cancel(), state))
    assert assemble(cancel(), state) is NOTHING_TO_DO


def test_a_cancel_of_an_order_being_assembled_asks_to_withdraw_the_assembly_and_release() -> None:
    state: State = {}
    for event in (placed(), reserved()):
        apply_state(state, assemble(event, state))
    work = assemble(cancel(), state)
    assert work.withdraws, "during the assembly it wins; after it, nothing is withdrawn"
    assert statuses(work.outputs) == [Status.CANCELLED] and work.seconds == 0
    assert EndReservation("3c91b", used=False) in work.outputs


def test_with_stock_not_counted_assemble_sends_each_order_to_the_oven_at_once() -> None:
    assemble_alone = build_assemble(Settings(count_stock=False)).handle
    work = assemble_alone(placed(), {})
    assembling, baking = assembling_and_baking_time(an_order().ingredients())
    assert work.outputs == [PizzaAssembled("3c91b", baking), StatusChanged("3c91b", Status.IN_OVEN)]
    assert work.seconds == assembling and work.state == {"3c91b": HANDLED}, "nothing reserved"
    assert statuses(assemble_alone(placed(sauce="Ketchup"), {}).outputs) == [Status.INVALID_ORDER]


def test_with_stock_not_counted_a_cancel_of_an_order_being_assembled_releases_nothing() -> None:
    state: State = {}
    apply_state(state, assemble(placed(), state, count_stock=False))
    work = assemble(cancel(), state, count_stock=False)
    assert work.withdraws and work.outputs == [StatusChanged("3c91b", Status.CANCELLED)]
    kept: State = {}
    apply_state(kept, assemble(cancel(), kept, count_stock=False))
    later = assemble(placed(), kept, count_stock=False)
    assert later.outputs == [StatusChanged("3c91b", Status.CANCELLED)], "kept, as with stock"


def test_a_cancel_whose_order_never_comes_is_forgotten_as_handled_orders_are() -> None:
    assert cancel_overdue("3c91b", CANCEL_REQUESTED, waited=99, forget_after=100) is None
    assert cancel_overdue("3c91b", CANCEL_REQUESTED, waited=100, forget_after=100) == Overdue()
    assert cancel_overdue("3c91b", HANDLED, waited=1e9, forget_after=100) is None
    assert cancel_overdue("3c91b", RESERVING, waited=1e9, forget_after=100) is None


def test_the_pantry_forgets_an_orders_entry_and_a_restocks_in_time_and_never_a_level() -> None:
    reservation = {"ingredients": ["Mushroom"], "partition": 3}
    assert pantry_overdue("order:3c91b", reservation, waited=99, forget_after=100) is None
    assert pantry_overdue("order:3c91b", reservation, waited=100, forget_after=100) == Overdue()
    assert pantry_overdue("order:3c91b", "released", waited=100, forget_after=100) == Overdue()
    assert pantry_overdue("restock:r-1", "restocked", waited=100, forget_after=100) == Overdue()
    assert pantry_overdue("stock:Mushroom", 7, waited=1e9, forget_after=100) is None
