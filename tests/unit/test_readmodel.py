"""The read model: idempotent, never moving backwards, offsets kept with the view.

Every test runs against SQLite and, when its binaries are here, PostgreSQL.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from pizzashop.contract import OrderPlaced, Status, StatusChanged
from pizzashop.readmodel import OrderView, status_after
from pizzashop.readmodel.store import ReadModel
from pizzashop.readmodel.writer import OrderWriter
from pizzashop.service import StaleBatch
from tests.unit.conftest import OpenReadModel
from tests.unit.shop_events import T0, placed, progress, stuck


def view_of(read_model: ReadModel, order_id: str) -> OrderView:
    view = read_model.orders.get_order(order_id)
    assert view is not None, f"{order_id} is not in the read model"
    return view


def statuses(read_model: ReadModel, order_id: str) -> list[Status]:
    return [entry.status for entry in view_of(read_model, order_id).history]


def test_an_order_shows_its_full_history(read_model: ReadModel) -> None:
    read_model.writer.apply(progress("a"), {})
    view = view_of(read_model, "a")
    assert view.status is Status.DELIVERED and view.status_text == "Your pizza was delivered"
    assert statuses(read_model, "a") == [100, 200, 300, 400]
    assert view.placed_at == T0 and view.updated_at == T0 + 3
    assert view.order is not None and view.order.extra_toppings == ["Mushroom"]


def test_an_unknown_order_is_none(read_model: ReadModel) -> None:
    assert read_model.orders.get_order("nope") is None


def test_applying_the_same_events_twice_changes_nothing(read_model: ReadModel) -> None:
    read_model.writer.apply(progress("a"), {})
    before = read_model.orders.get_order("a")
    read_model.writer.apply(progress("a"), {})
    assert read_model.orders.get_order("a") == before


def test_an_order_placed_twice_keeps_its_first_placing(read_model: ReadModel) -> None:
    read_model.writer.apply([placed("a", at=T0)], {})
    read_model.writer.apply([placed("a", customer="someone else", at=T0 + 99)], {})
    view = view_of(read_model, "a")
    assert (view.customer_id, view.placed_at, view.updated_at) == ("c1", T0, T0)
    assert statuses(read_model, "a") == [100]


def test_replaying_everything_from_the_start_rebuilds_the_same_view(
    open_model: OpenReadModel,
) -> None:
    events = (
        progress("a")
        + [stuck("b", T0 + 60)]
        + progress("b", at=T0 + 10)[:2]
        + [placed("c", at=T0 + 20)]
    )
    first, second = open_model(), open_model()
    first.writer.apply(events, {})
    for event in events:  # one at a time, as a slow status service would
        second.writer.apply([event], {})
    second.writer.apply(events, {})  # and replayed once more
    for order_id in ("a", "b", "c"):
        one, two = view_of(first, order_id), view_of(second, order_id)
        assert (one.status, one.updated_at, [e.status for e in one.history]) == (
            two.status,
            two.updated_at,
            [e.status for e in two.history],
        )


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_status_never_moves_backwards_whatever_order_events_arrive_in(
    read_model: ReadModel, order: tuple[int, ...]
) -> None:
    events = progress("a")
    for index in order:
        read_model.writer.apply([events[index]], {})
        shown = view_of(read_model, "a").status
        assert shown == max(step_of(events[i]) for i in order[: order.index(index) + 1]), (
            "shows the furthest step seen"
        )
    assert view_of(read_model, "a").status is Status.DELIVERED
    assert statuses(read_model, "a") == [100, 200, 300, 400], "each status once, in time order"


def test_every_arrival_order_in_one_batch_ends_delivered(read_model: ReadModel) -> None:
    for n, order in enumerate(itertools.permutations(progress("a"))):
        order_id = f"a{n}"
        read_model.writer.apply([_renamed(e, order_id) for e in order], {})
        assert view_of(read_model, order_id).status is Status.DELIVERED
        assert statuses(read_model, order_id) == [100, 200, 300, 400]


def test_live_history_numbers_increase_in_arrival_order(read_model: ReadModel) -> None:
    for event in reversed(progress("a")):
        read_model.writer.apply([event], {})
    seqs = [e.seq for e in read_model.orders.history_after("a", 0)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert [e.status for e in read_model.orders.history_after("a", 0)] == [400, 300, 200, 100]


def test_a_status_before_its_order_is_kept_and_filled_in_later(read_model: ReadModel) -> None:
    read_model.writer.apply([StatusChanged("a", Status.IN_OVEN, T0 + 1)], {})
    early = view_of(read_model, "a")
    assert early.order is None and early.customer_id is None and early.status is Status.IN_OVEN
    read_model.writer.apply([placed("a")], {})
    view = view_of(read_model, "a")
    assert view.order is not None and view.customer_id == "c1" and view.placed_at == T0
    assert view.status is Status.IN_OVEN
    assert [o.order_id for o in read_model.orders.orders_of("c1")] == ["a"]


def test_offsets_are_stored_with_the_batch(read_model: ReadModel) -> None:
    read_model.writer.apply(progress("a"), {("pizza-ordered", 0): 5, ("pizza-status", 3): 9})
    read_model.writer.apply([], {("pizza-status", 3): 12})
    assert read_model.writer.stored_offsets() == {("pizza-ordered", 0): 5, ("pizza-status", 3): 12}


def test_a_failed_batch_stores_neither_events_nor_offsets(read_model: ReadModel) -> None:
    bad = StatusChanged("a", Status.IN_OVEN, T0)
    object.__setattr__(bad, "status", "not a status")  # breaks inside the transaction
    with pytest.raises(ValueError):
        read_model.writer.apply([placed("a"), bad], {("pizza-ordered", 0): 1})
    assert read_model.orders.get_order("a") is None
    assert read_model.writer.stored_offsets() == {}


def test_orders_of_a_customer_are_theirs_only_newest_first(read_model: ReadModel) -> None:
    read_model.writer.apply(
        [placed("old", "c1", T0), placed("new", "c1", T0 + 5), placed("other", "c2", T0 + 9)], {}
    )
    assert [v.order_id for v in read_model.orders.orders_of("c1")] == ["new", "old"]
    assert [v.order_id for v in read_model.orders.orders_of("c1", limit=1)] == ["new"]
    assert [v.order_id for v in read_model.orders.orders_of("c2")] == ["other"]
    assert read_model.orders.orders_of("nobody") == []


def test_recent_orders_are_everyones_latest_first(read_model: ReadModel) -> None:
    read_model.writer.apply(
        [
            placed("x", "c1", T0),
            placed("y", "c2", T0 + 5),
            StatusChanged("x", Status.IN_OVEN, T0 + 9),
        ],
        {},
    )
    assert [v.order_id for v in read_model.orders.recent_orders()] == ["x", "y"]
    assert [v.order_id for v in read_model.orders.recent_orders(limit=1)] == ["x"]


def test_history_after_gives_only_what_came_later(read_model: ReadModel) -> None:
    read_model.writer.apply(progress("a")[:2], {})
    seen = read_model.orders.history_after("a", 0)
    assert [e.status for e in seen] == [100, 200]
    read_model.writer.apply(progress("a")[2:], {})
    later = read_model.orders.history_after("a", seen[-1].seq)
    assert [e.status for e in later] == [300, 400]
    assert read_model.orders.history_after("a", later[-1].seq) == []


def test_stalled_orders_are_those_not_moving_and_not_done(read_model: ReadModel) -> None:
    read_model.writer.apply(
        progress("done")
        + progress("slow")[:2]
        + [placed("fresh", at=T0 + 100)]
        + progress("marked")[:1]
        + [stuck("marked", T0 + 50)],
        {},
    )
    assert [v.order_id for v in read_model.watchdog.stalled_orders(not_moved_since=T0 + 100)] == [
        "slow"
    ]
    assert [v.order_id for v in read_model.watchdog.stalled_orders(not_moved_since=T0 + 101)] == [
        "slow",
        "fresh",
    ]


def test_stuck_shows_until_the_order_moves_on(read_model: ReadModel) -> None:
    read_model.writer.apply(progress("a")[:2] + [stuck("a", T0 + 50)], {})
    assert view_of(read_model, "a").status is Status.STUCK
    read_model.writer.apply(progress("a")[2:3], {})
    assert view_of(read_model, "a").status is Status.OUT_FOR_DELIVERY
    read_model.writer.apply(progress("a")[3:], {})
    assert view_of(read_model, "a").status is Status.DELIVERED
    assert statuses(read_model, "a") == [100, 200, 300, 400, 510]


def test_a_late_step_from_before_the_stuck_mark_does_not_move_it_back(
    read_model: ReadModel,
) -> None:
    a = progress("a")
    read_model.writer.apply([a[0], a[2], stuck("a", T0 + 50)], {})  # 200 is late, 300 is here
    read_model.writer.apply([a[1]], {})
    assert view_of(read_model, "a").status is Status.STUCK, "200 is not progress past 300"
    read_model.writer.apply([a[3]], {})
    assert view_of(read_model, "a").status is Status.DELIVERED


def test_an_order_stuck_twice_shows_stuck_with_its_first_mark_once(read_model: ReadModel) -> None:
    a = progress("a")
    read_model.writer.apply(a[:2] + [stuck("a", T0 + 50)], {})
    read_model.writer.apply(
        [StatusChanged("a", Status.OUT_FOR_DELIVERY, T0 + 70), stuck("a", T0 + 90)], {}
    )
    view = view_of(read_model, "a")
    assert view.status is Status.STUCK and view.updated_at == T0 + 90
    assert [(e.status, e.timestamp) for e in view.history] == [
        (100, T0),
        (200, T0 + 1),
        (510, T0 + 50),
        (300, T0 + 70),
    ], "history has each status once"
    assert read_model.watchdog.stalled_orders(not_moved_since=T0 + 10_000) == [], (
        "a stuck order is not stalled again"
    )


STUCK_MARK = stuck("a", T0 + 50)


@pytest.mark.parametrize(
    "on_the_status_topic",
    [
        [STUCK_MARK],
        [StatusChanged("a", Status.IN_OVEN, T0 + 1), STUCK_MARK],
        [StatusChanged("a", Status.IN_OVEN, T0 + 1), STUCK_MARK, progress("a")[2]],
    ],
    ids=["stuck-as-placed", "stuck-in-the-oven", "moved-on"],
)
def test_an_order_shows_the_same_wherever_its_placing_is_read_among_its_statuses(
    read_model: ReadModel, on_the_status_topic: list[StatusChanged]
) -> None:
    """The placing and the statuses are on two topics: the status service and a rebuild
    each read them interleaved their own way, and must show the same (a rebuild's `verify`
    once found a stuck order shown as just placed)."""
    shown: dict[str, object] = {}
    for where in range(len(on_the_status_topic) + 1):
        events: list[OrderPlaced | StatusChanged] = [*on_the_status_topic]
        events.insert(where, placed("a"))
        for batches in ([events], [[e] for e in events]):
            order_id = f"a{where}-{len(batches)}"
            for batch in batches:
                read_model.writer.apply([_renamed(e, order_id) for e in batch], {})
            view = view_of(read_model, order_id)
            history = [(e.status, e.timestamp) for e in view.history]
            shown[order_id] = (view.status, view.updated_at, history)
    assert len(set(map(repr, shown.values()))) == 1, shown


def test_a_stale_stuck_mark_replayed_changes_nothing(read_model: ReadModel) -> None:
    a = progress("a")
    read_model.writer.apply(
        a[:2] + [stuck("a", T0 + 50), StatusChanged("a", Status.OUT_FOR_DELIVERY, T0 + 70)], {}
    )
    before = view_of(read_model, "a")
    read_model.writer.apply([stuck("a", T0 + 50)], {})
    assert view_of(read_model, "a") == before and before.status is Status.OUT_FOR_DELIVERY


def test_a_delivered_order_is_never_marked_stuck(read_model: ReadModel) -> None:
    read_model.writer.apply(progress("a") + [stuck("a", T0 + 50)], {})
    assert view_of(read_model, "a").status is Status.DELIVERED
    assert Status.STUCK not in statuses(read_model, "a")


def test_an_invalid_order_stays_invalid(read_model: ReadModel) -> None:
    read_model.writer.apply(
        [
            placed("a"),
            StatusChanged("a", Status.INVALID_ORDER, T0 + 1),
            StatusChanged("a", Status.IN_OVEN, T0 + 2),
        ],
        {},
    )
    assert view_of(read_model, "a").status is Status.INVALID_ORDER
    assert read_model.watchdog.stalled_orders(not_moved_since=T0 + 10_000) == []


def test_a_cancelled_order_shows_no_step_after_cancelled(read_model: ReadModel) -> None:
    read_model.writer.apply(
        [
            StatusChanged("a", Status.IN_OVEN, T0 + 1),
            StatusChanged("a", Status.CANCELLED, T0 + 2),
            StatusChanged("a", Status.OUT_FOR_DELIVERY, T0 + 3),
        ],
        {},
    )
    read_model.writer.apply([placed("a"), StatusChanged("a", Status.DELIVERED, T0 + 4)], {})
    view = view_of(read_model, "a")
    assert view.status is Status.CANCELLED and view.status_text == "Your order was cancelled"
    assert statuses(read_model, "a") == [100, 200, 450], "received, in the oven, then cancelled"
    assert read_model.watchdog.stalled_orders(not_moved_since=T0 + 10_000) == []


def test_a_second_read_model_on_the_same_database_sees_each_batch_whole(tmp_path: Path) -> None:
    from pizzashop.readmodel.store import open_readmodel

    url = f"sqlite:///{tmp_path}/shared.sqlite3"
    writing, reading = open_readmodel(url), open_readmodel(url)
    try:
        writing.writer.apply(progress("a"), {("pizza-status", 0): 4})
        assert statuses(reading, "a") == [100, 200, 300, 400]
        assert reading.orders.read_up_to() == {("pizza-status", 0): 4}
    finally:
        writing.close()
        reading.close()


def test_a_writer_given_partitions_back_reads_what_another_wrote_meanwhile(tmp_path: Path) -> None:
    from pizzashop.readmodel.store import open_readmodel

    url = f"sqlite:///{tmp_path}/shared.sqlite3"
    first, second = open_readmodel(url), open_readmodel(url)
    try:
        first.writer.apply(progress("a")[:2], {})  # placed, in the oven
        second.writer.stored_offsets()  # the partitions move to the second writer...
        second.writer.apply(progress("a")[2:3], {})  # ...which takes it out for delivery
        first.writer.stored_offsets()  # and back to the first, which reads again from there
        first.writer.apply(progress("a")[2:], {})
        assert statuses(first, "a") == [100, 200, 300, 400]
    finally:
        first.close()
        second.close()


def test_a_batch_another_writer_applied_meanwhile_is_refused_whole(read_model: ReadModel) -> None:
    """Found by a 20-minute chaos run: a status instance paused past its session came back
    with a batch it had read before the pause, and what it kept in memory of its orders;
    another instance had applied that batch meanwhile. Refused, nothing of it is written."""
    zombie, other = read_model.writer, OrderWriter(read_model.database)
    events, status_0 = progress("a"), ("pizza-status", 0)

    def read_at(*offsets: int) -> list[tuple[str, int, int]]:
        return [(*status_0, offset) for offset in offsets]

    zombie.apply(events[:2], {status_0: 2}, read_at(0, 1))
    other.stored_offsets()  # the partition moves to another instance while this one is paused
    other.apply(events[2:], {status_0: 4}, read_at(2, 3))
    with pytest.raises(StaleBatch, match=r"pizza-status\[0\]"):
        zombie.apply(events[2:], {status_0: 4}, read_at(2, 3))
    assert statuses(read_model, "a") == [100, 200, 300, 400]
    other.apply([stuck("a", T0 + 60)], {status_0: 5}, read_at(4))  # the next batch goes on


def test_status_after_keeps_final_statuses() -> None:
    assert status_after(Status.DELIVERED, Status.IN_OVEN) is Status.DELIVERED
    assert status_after(Status.DELIVERED, Status.STUCK) is Status.DELIVERED
    assert status_after(Status.INVALID_ORDER, Status.IN_OVEN) is Status.INVALID_ORDER
    assert status_after(Status.OUT_FOR_DELIVERY, Status.IN_OVEN) is Status.OUT_FOR_DELIVERY
    assert status_after(None, Status.IN_OVEN) is Status.IN_OVEN


def test_status_after_leaves_stuck_only_for_real_progress() -> None:
    assert (
        status_after(Status.STUCK, Status.IN_OVEN, reached=Status.OUT_FOR_DELIVERY) is Status.STUCK
    )
    assert (
        status_after(Status.STUCK, Status.DELIVERED, reached=Status.OUT_FOR_DELIVERY)
        is Status.DELIVERED
    )
    assert status_after(Status.STUCK, Status.IN_OVEN) is Status.IN_OVEN, "furthest step unknown"
    assert status_after(Status.STUCK, Status.RECEIVED) is Status.STUCK, "placed before marked"


def _renamed(event: OrderPlaced | StatusChanged, order_id: str) -> OrderPlaced | StatusChanged:
    if isinstance(event, OrderPlaced):
        return OrderPlaced(order_id, event.order, event.timestamp)
    return StatusChanged(order_id, event.status, event.timestamp)


def step_of(event: OrderPlaced | StatusChanged) -> int:
    return event.status if isinstance(event, StatusChanged) else 100


# --- the web app's sign-ins ----------------------------------------------------------------
