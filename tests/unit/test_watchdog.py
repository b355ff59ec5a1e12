"""The status service's pure parts: materialising batches, the stuck-order watchdog and
parking the events of orders never placed."""

from __future__ import annotations

import json

from pizzashop.contract import PizzaBaked, Status, StatusChanged, now_ms
from pizzashop.readmodel.store import ReadModel
from pizzashop.service import Routed
from pizzashop.services.status import materialise, orders_to_mark_stuck, unknown_orders_to_park
from tests.unit.shop_events import T0, placed, progress

MINUTE = 60_000


def marked(read_model: ReadModel, now: int) -> list[str]:
    """Mark what the watchdog finds, as the status service would once the marks come back."""
    marks = orders_to_mark_stuck(read_model.watchdog, now=now, stuck_after_ms=MINUTE)
    materialise(read_model.writer, [m.event for m in marks], {})
    return [m.event.order_id for m in marks]


def test_the_watchdog_marks_only_orders_that_stopped_moving(read_model: ReadModel) -> None:
    read_model.writer.apply(
        progress("done") + progress("stalled")[:2] + [placed("fresh", at=T0 + 100_000)], {}
    )
    marks = orders_to_mark_stuck(read_model.watchdog, now=T0 + 2 * MINUTE, stuck_after_ms=MINUTE)
    assert [m.event for m in marks] == [StatusChanged("stalled", Status.STUCK, T0 + 2 * MINUTE)], (
        "the mark says when it was made"
    )


def test_a_stuck_mark_goes_to_the_partition_the_order_was_placed_on(read_model: ReadModel) -> None:
    events = progress("stalled")[:2]
    read_model.writer.apply(events, {}, sources=[("pizza-ordered", 4, 17), ("pizza-status", 4, 3)])
    read_model.writer.apply(
        [placed("from-before")], {}
    )  # placed before partitions were kept: unknown

    marks = orders_to_mark_stuck(read_model.watchdog, now=T0 + 2 * MINUTE, stuck_after_ms=MINUTE)

    assert {m.event.order_id: m.partition for m in marks} == {"stalled": 4, "from-before": -1}
    assert all(isinstance(m, Routed) for m in marks)


def test_an_order_marked_stuck_is_not_marked_again(read_model: ReadModel) -> None:
    read_model.writer.apply(progress("a")[:2], {})
    assert marked(read_model, T0 + 2 * MINUTE) == ["a"]
    assert marked(read_model, T0 + 10 * MINUTE) == []
    assert read_model.orders.get_order("a").status is Status.STUCK  # type: ignore[union-attr]  # the order was applied just above


def test_an_order_that_moves_on_and_stalls_again_is_marked_again_once(
    read_model: ReadModel,
) -> None:
    read_model.writer.apply(progress("a")[:2], {})
    assert marked(read_model, T0 + 2 * MINUTE) == ["a"]
    read_model.writer.apply([StatusChanged("a", Status.OUT_FOR_DELIVERY, T0 + 3 * MINUTE)], {})
    assert marked(read_model, T0 + 3 * MINUTE + 30_000) == [], "moved half a minute ago"
    assert marked(read_model, T0 + 5 * MINUTE) == ["a"]
    assert marked(read_model, T0 + 6 * MINUTE) == []
    view = read_model.orders.get_order("a")
    assert view is not None and view.status is Status.STUCK
    assert [e.status for e in view.history] == [100, 200, 510, 300], (
        "each status once, in time order"
    )


def test_delivered_and_invalid_orders_are_never_stuck(read_model: ReadModel) -> None:
    read_model.writer.apply(
        progress("done") + [placed("bad"), StatusChanged("bad", Status.INVALID_ORDER, T0)], {}
    )
    assert (
        orders_to_mark_stuck(read_model.watchdog, now=T0 + 60 * MINUTE, stuck_after_ms=MINUTE) == []
    )


def test_materialise_stores_the_batch_with_its_offsets_and_skips_kitchen_events(
    read_model: ReadModel,
) -> None:
    materialise(read_model.writer, [*progress("a"), PizzaBaked("a")], {("pizza-status", 2): 7})
    view = read_model.orders.get_order("a")
    assert view is not None and view.status is Status.DELIVERED
    assert read_model.writer.stored_offsets() == {("pizza-status", 2): 7}


def status_of_unknown(order_id: str, at: int = T0) -> StatusChanged:
    return StatusChanged(order_id, Status.IN_OVEN, at)


def test_status_events_of_an_order_never_placed_are_parked_with_their_source(
    read_model: ReadModel,
) -> None:
    materialise(
        read_model.writer,
        [status_of_unknown("ghost"), *progress("real")],
        {},
        [("pizza-status", 3, 41), *[("pizza-ordered", 3, 7 + i) for i in range(4)]],
    )
    assert (
        unknown_orders_to_park(read_model.watchdog, now=now_ms() - MINUTE, wait_ms=MINUTE) == []
    ), "too early"

    rejected = unknown_orders_to_park(
        read_model.watchdog, now=now_ms() + 2 * MINUTE, wait_ms=MINUTE
    )

    assert [(r.source_topic, r.source_partition, r.source_offset, r.key) for r in rejected] == [
        ("pizza-status", 3, 41, b"ghost")
    ]
    assert rejected[0].error.startswith("unknown order")
    assert json.loads(rejected[0].value or b"") == {"status": 200, "timestamp": T0}
    read_model.writer.forget_unplaced(["ghost"])
    assert read_model.orders.get_order("ghost") is None, (
        "an order never placed leaves no trace once parked"
    )
    assert (
        unknown_orders_to_park(read_model.watchdog, now=now_ms() + 2 * MINUTE, wait_ms=MINUTE) == []
    )
    assert read_model.orders.get_order("real").status is Status.DELIVERED  # type: ignore[union-attr]  # the order was applied just above


def test_an_order_placed_after_its_status_events_is_not_unknown(read_model: ReadModel) -> None:
    materialise(read_model.writer, [status_of_unknown("late")], {}, [("pizza-status", 0, 5)])
    materialise(read_model.writer, [placed("late")], {}, [("pizza-ordered", 0, 9)])

    assert (
        unknown_orders_to_park(read_model.watchdog, now=now_ms() + 2 * MINUTE, wait_ms=MINUTE) == []
    )
    read_model.writer.forget_unplaced(["late"])
    assert [e.status for e in read_model.orders.get_order("late").history] == [100, 200]  # type: ignore[union-attr]  # the order was applied just above


def test_a_replayed_unknown_event_is_parked_once(read_model: ReadModel) -> None:
    for _ in range(2):
        materialise(read_model.writer, [status_of_unknown("ghost")], {}, [("pizza-status", 1, 2)])
    assert (
        len(unknown_orders_to_park(read_model.watchdog, now=now_ms() + 2 * MINUTE, wait_ms=MINUTE))
        == 1
    )


def test_orders_never_placed_are_parked_not_marked_stuck(read_model: ReadModel) -> None:
    materialise(read_model.writer, [status_of_unknown("ghost")], {}, [("pizza-status", 1, 2)])
    assert (
        orders_to_mark_stuck(read_model.watchdog, now=T0 + 60 * MINUTE, stuck_after_ms=MINUTE) == []
    )
