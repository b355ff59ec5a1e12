"""Each service's handler, with plain asserts and no broker."""

from __future__ import annotations

from pizzashop.contract import (
    CancelRequested,
    OrderPlaced,
    PizzaAssembled,
    PizzaBaked,
    Status,
    StatusChanged,
)
from pizzashop.service import HANDLED, NOTHING_TO_DO, Overdue, State
from pizzashop.services.assemble import assemble, assembling_and_baking_time
from pizzashop.services.bake import CANCEL_REQUESTED, bake
from pizzashop.services.bake import overdue as cancel_overdue
from pizzashop.services.delivery import BAKED, DELIVERY_SECONDS, delivery, overdue
from tests.unit.shop_events import an_order


def placed(order_id: str = "3c91b", **changes: object) -> OrderPlaced:
    return OrderPlaced(order_id, an_order(**changes), timestamp=1676235639159)


def statuses(work_outputs: object) -> list[Status]:
    return [e.status for e in work_outputs if isinstance(e, StatusChanged)]  # type: ignore[attr-defined]  # the helper takes any handler's Work


def test_times_follow_the_seed_ranges_and_depend_only_on_ingredients() -> None:
    for sauce in ("Tomato", "Pesto", "Hummus"):
        assembling, baking = assembling_and_baking_time(an_order(sauce=sauce))
        assert 2 <= assembling <= 6 and 10 <= baking <= 19
    assert assembling_and_baking_time(an_order(name="A")) == assembling_and_baking_time(
        an_order(name="B")
    )
    reordered = an_order(extra_toppings=["Onion", "Mushroom"])
    assert assembling_and_baking_time(reordered) == assembling_and_baking_time(
        an_order(extra_toppings=["Mushroom", "Onion"])
    )


def test_assemble_sends_the_pizza_to_the_oven_after_assembling() -> None:
    work = assemble(placed(), {})
    assembling, baking = assembling_and_baking_time(an_order())
    assert work.seconds == assembling
    assert PizzaAssembled("3c91b", baking) in work.outputs
    assert statuses(work.outputs) == [Status.IN_OVEN]


def test_assemble_rejects_an_order_that_is_not_on_the_menu() -> None:
    work = assemble(placed(sauce="Ketchup"), {})
    assert work.seconds == 0
    assert statuses(work.outputs) == [Status.INVALID_ORDER]
    assert not any(isinstance(e, PizzaAssembled) for e in work.outputs)


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
    first = assemble(placed(), state)
    apply_state(state, first)
    assert state == {"3c91b": HANDLED}
    assert assemble(placed(), state) is NOTHING_TO_DO, "a retry or a second producer's copy"


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


def test_a_cancel_before_the_pizza_is_kept_and_the_pizza_then_cancelled_not_baked() -> None:
    state: State = {}
    kept = bake(cancel(), state)
    assert not kept.outputs and kept.state == {"3c91b": CANCEL_REQUESTED} and not kept.withdraws
    apply_state(state, kept)
    work = bake(PizzaAssembled("3c91b", 17), state)
    assert work.seconds == 0, "a cancelled pizza does not go into the oven"
    assert statuses(work.outputs) == [Status.CANCELLED]
    assert not any(isinstance(e, PizzaBaked) for e in work.outputs)
    apply_state(state, work)
    assert state == {"3c91b": HANDLED}
    assert bake(PizzaAssembled("3c91b", 17), state) is NOTHING_TO_DO, "its pizza coming again"


def test_a_cancel_asked_twice_before_the_pizza_is_kept_once() -> None:
    state: State = {}
    apply_state(state, bake(cancel(), state))
    assert bake(cancel(), state) is NOTHING_TO_DO


def test_a_cancel_of_a_pizza_bake_has_taken_asks_to_withdraw_the_baking() -> None:
    state: State = {}
    apply_state(state, bake(PizzaAssembled("3c91b", 17), state))
    work = bake(cancel(), state)
    assert work.withdraws, "in the oven it wins; out of it, the runtime finds nothing to withdraw"
    assert statuses(work.outputs) == [Status.CANCELLED] and work.seconds == 0


def test_a_cancel_whose_pizza_never_comes_is_forgotten_as_handled_orders_are() -> None:
    assert cancel_overdue("3c91b", CANCEL_REQUESTED, waited=99, forget_after=100) is None
    assert cancel_overdue("3c91b", CANCEL_REQUESTED, waited=100, forget_after=100) == Overdue()
    assert cancel_overdue("3c91b", HANDLED, waited=1e9, forget_after=100) is None
