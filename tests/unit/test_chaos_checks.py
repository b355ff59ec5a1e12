"""The chaos run's invariants, on hand-made records: each rule fails when it should."""

from __future__ import annotations

from collections.abc import Iterable

from pizzashop import contract
from pizzashop.chaos.checks import Evidence, Position, Seen, check, step_problems
from pizzashop.contract import (
    CancelRequested,
    Event,
    OrderPlaced,
    PizzaAssembled,
    PizzaBaked,
    ReservationDecided,
    Status,
    StatusChanged,
    StockLevel,
    Topic,
)
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.readmodel import OrderView, StatusEntry
from tests.shop_harness import an_order

PLACED_AT = 1_700_000_000_000
START_WITH = 1  # of each ingredient in the pantry


class Log:
    """Records as a topic would hold them, each at the next offset of partition 0."""

    def __init__(self) -> None:
        self.records: list[Seen] = []

    def write(self, *events: Event) -> None:
        for event in events:
            record = contract.encode(event)
            self.raw(str(record.topic), record.key, record.value or None)

    def raw(self, topic: str, key: bytes | None, value: bytes | None) -> Position:
        offset = sum(1 for r in self.records if r.topic == topic)
        self.records.append(Seen(topic, 0, offset, key, value))
        return (topic, 0, offset)


def placed(order_id: str) -> OrderPlaced:
    return OrderPlaced(order_id, an_order(), PLACED_AT)


def status(order_id: str, code: Status) -> StatusChanged:
    return StatusChanged(order_id, code, PLACED_AT)


def delivered(log: Log, order_id: str) -> None:
    """Delivered, with the one of each ingredient the pantry held (START_WITH) used."""
    ingredients = an_order().ingredients()
    log.write(
        placed(order_id),
        ReservationDecided(order_id, ingredients),
        *(StockLevel(ingredient, 0) for ingredient in ingredients),
        PizzaAssembled(order_id, 10),
        status(order_id, Status.IN_OVEN),
        PizzaBaked(order_id),
        status(order_id, Status.OUT_FOR_DELIVERY),
        status(order_id, Status.DELIVERED),
    )


def cancelled(log: Log, order_id: str) -> None:
    log.write(
        placed(order_id), CancelRequested(order_id, PLACED_AT), status(order_id, Status.CANCELLED)
    )


def view(order_id: str, statuses: Iterable[Status]) -> OrderView:
    history = tuple(StatusEntry(i, s, PLACED_AT + i) for i, s in enumerate(statuses))
    return OrderView(order_id, "c", an_order(), PLACED_AT, history[-1].status, history, PLACED_AT)


def evidence(
    log: Log,
    views: dict[str, OrderView | None],
    poison: list[Position] | None = None,
    letters: list[DeadLetter] | None = None,
    accepted: set[str] | None = None,
) -> Evidence:
    return Evidence(
        accepted=set(views) if accepted is None else accepted,
        cancels_sent=set(),
        poison=poison or [],
        records=log.records,
        dead_letters=letters or [],
        views=views,
        start=lambda ingredient: START_WITH,
    )


DELIVERED_VIEW = (Status.RECEIVED, Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED)
CANCELLED_VIEW = (Status.RECEIVED, Status.CANCELLED)


def test_a_clean_run_has_no_violation_and_counts_each_outcome() -> None:
    log = Log()
    delivered(log, "a")
    cancelled(log, "b")
    log.write(status("a", Status.STUCK))  # a late stuck mark of a delivered order is no harm
    verdict = check(evidence(log, {"a": view("a", DELIVERED_VIEW), "b": view("b", CANCELLED_VIEW)}))
    assert verdict.violations == []
    assert (verdict.delivered, verdict.cancelled, verdict.stuck_marks) == (1, 1, 1)
    assert verdict.lost == [] and verdict.duplicated == []


def test_a_status_written_twice_is_a_violation_and_a_duplicate() -> None:
    log = Log()
    delivered(log, "a")
    log.write(status("a", Status.OUT_FOR_DELIVERY))
    verdict = check(evidence(log, {"a": view("a", DELIVERED_VIEW)}))
    assert any("300 more than once" in v for v in verdict.violations), verdict.violations
    assert verdict.duplicated == ["a"]


def test_a_step_backwards_is_a_violation() -> None:
    assert step_problems([Status.IN_OVEN, Status.DELIVERED, Status.OUT_FOR_DELIVERY]) == [
        "400 after 200: 200 400 300",
        "backwards from 400 to 300: 200 400 300",
    ]


def test_delivered_and_cancelled_is_a_violation() -> None:
    log = Log()
    cancelled(log, "a")
    log.write(PizzaAssembled("a", 10), status("a", Status.DELIVERED))
    verdict = check(evidence(log, {"a": view("a", CANCELLED_VIEW)}))
    assert "a: both delivered and cancelled" in verdict.violations
    assert "a: 450 400, yet its pizza was assembled" in verdict.violations


def test_a_step_after_cancelled_is_a_violation() -> None:
    assert step_problems([Status.CANCELLED, Status.IN_OVEN]) == ["200 after cancelled: 450 200"]
    assert step_problems([Status.SOLD_OUT, Status.IN_OVEN]) == ["200 after 520: 520 200"]


def test_cancelled_without_a_cancel_asked_is_a_violation() -> None:
    log = Log()
    log.write(placed("a"), status("a", Status.CANCELLED))
    verdict = check(evidence(log, {"a": view("a", CANCELLED_VIEW)}))
    assert verdict.violations == ["a: cancelled without a cancel asked"]


def test_an_accepted_order_missing_from_the_log_is_lost() -> None:
    log = Log()
    delivered(log, "a")
    verdict = check(evidence(log, {"a": view("a", DELIVERED_VIEW)}, accepted={"a", "b"}))
    assert verdict.lost == ["b"]
    assert verdict.violations == ["b: accepted but not in pizza-ordered"]


def test_an_order_that_stopped_on_its_way_is_lost() -> None:
    log = Log()
    log.write(placed("a"), PizzaAssembled("a", 10), status("a", Status.IN_OVEN))
    verdict = check(evidence(log, {"a": view("a", (Status.RECEIVED, Status.IN_OVEN))}))
    assert verdict.lost == ["a"]
    assert "a: never final: 200" in verdict.violations


def test_a_second_baked_record_is_a_duplicate() -> None:
    log = Log()
    delivered(log, "a")
    log.write(PizzaBaked("a"))
    verdict = check(evidence(log, {"a": view("a", DELIVERED_VIEW)}))
    assert "a: 2 records on pizza-baked" in verdict.violations
    assert verdict.duplicated == ["a"]


def test_a_read_model_that_disagrees_with_the_topics_is_a_violation() -> None:
    log = Log()
    delivered(log, "a")
    verdict = check(
        evidence(log, {"a": view("a", (Status.RECEIVED, Status.IN_OVEN, Status.STUCK))})
    )
    assert verdict.violations == [
        "a: the read model shows 100 200, the topics 200 300 400",
        "a: still stuck in the read model",
    ]


def test_poison_missing_from_the_dead_letter_topic_is_a_violation() -> None:
    log = Log()
    parked = log.raw(str(Topic.ORDERED), b"poison-1", b"\xff\xfe")
    missing = log.raw(str(Topic.STATUS), None, b'{"status": 400}')
    letter = DeadLetter(*parked, key=b"poison-1", value=b"\xff\xfe", error="not JSON")
    verdict = check(evidence(log, {}, poison=[parked, missing], letters=[letter]))
    assert verdict.violations == ["pizza-status[0]@0: poison not in pizza-dlq"]
    assert verdict.poison_parked == 1


def test_a_real_event_in_the_dead_letter_topic_is_a_violation() -> None:
    log = Log()
    delivered(log, "a")
    letter = DeadLetter(
        str(Topic.STATUS), 0, 2, key=b"a", value=b"{}", error="odd", service="status"
    )
    verdict = check(evidence(log, {"a": view("a", DELIVERED_VIEW)}, letters=[letter]))
    assert verdict.violations == ["pizza-status[0]@2: a real event parked by status: odd"]


def test_a_record_that_is_not_an_event_and_not_poison_is_a_violation() -> None:
    log = Log()
    log.raw(str(Topic.BAKED), None, None)
    verdict = check(evidence(log, {}))
    assert verdict.violations == [
        "pizza-baked[0]@0: not a valid event, not poison: missing key (the order id)"
    ]


def test_a_sold_out_order_is_counted_and_needs_no_cancel() -> None:
    log = Log()
    log.write(placed("a"), status("a", Status.SOLD_OUT))
    verdict = check(evidence(log, {"a": view("a", (Status.RECEIVED, Status.SOLD_OUT))}))
    assert verdict.violations == []
    assert (verdict.sold_out, verdict.lost) == (1, [])
