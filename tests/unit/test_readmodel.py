"""The read model: idempotent, never moving backwards, offsets kept with the view."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged
from pizzashop.readmodel import ReadModel, open_readmodel, status_after
from pizzashop.services.status import orders_to_mark_stuck

T0 = 1_700_000_000_000


@pytest.fixture
def read_model(tmp_path: Path) -> Iterator[ReadModel]:
    model = open_readmodel(f"sqlite:///{tmp_path / 'readmodel.sqlite3'}")
    yield model
    model.close()


def placed(order_id: str, customer: str = "c1", at: int = T0) -> OrderPlaced:
    order = Order(customer_id=customer, name="Italo", sauce="Tomato", cheese="Mozzarella",
                  main_topping="Pepperoni", extra_toppings=["Mushroom"])
    return OrderPlaced(order_id, order, at)


def progress(order_id: str, at: int = T0) -> list[OrderPlaced | StatusChanged]:
    return [placed(order_id, at=at),
            StatusChanged(order_id, Status.IN_OVEN, at + 1),
            StatusChanged(order_id, Status.OUT_FOR_DELIVERY, at + 2),
            StatusChanged(order_id, Status.DELIVERED, at + 3)]


def statuses(read_model: ReadModel, order_id: str) -> list[Status]:
    view = read_model.get_order(order_id)
    assert view is not None, f"{order_id} is not in the read model"
    return [entry.status for entry in view.history]


def test_an_order_shows_its_full_history(read_model: ReadModel) -> None:
    read_model.apply(progress("a"), {})
    view = read_model.get_order("a")
    assert view is not None and view.status is Status.DELIVERED
    assert statuses(read_model, "a") == [100, 200, 300, 400]
    assert view.placed_at == T0 and view.updated_at == T0 + 3
    assert view.order is not None and view.order.extra_toppings == ["Mushroom"]


def test_applying_the_same_events_twice_changes_nothing(read_model: ReadModel) -> None:
    read_model.apply(progress("a"), {})
    before = read_model.get_order("a")
    read_model.apply(progress("a"), {})
    assert read_model.get_order("a") == before


def test_replaying_everything_from_the_start_rebuilds_the_same_view(tmp_path: Path) -> None:
    events = progress("a") + progress("b", at=T0 + 10)
    first = open_readmodel(f"sqlite:///{tmp_path / 'one.sqlite3'}")
    second = open_readmodel(f"sqlite:///{tmp_path / 'two.sqlite3'}")
    first.apply(events, {})
    for event in events:  # one at a time, as a slow status service would
        second.apply([event], {})
    second.apply(events, {})  # and replayed once more
    for order_id in ("a", "b"):
        one, two = first.get_order(order_id), second.get_order(order_id)
        assert one is not None and two is not None
        assert (one.status, [e.status for e in one.history]) == (two.status, [e.status for e in two.history])


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_status_never_moves_backwards_whatever_order_events_arrive_in(
    read_model: ReadModel, order: tuple[int, ...],
) -> None:
    events = progress("a")
    for index in order:
        read_model.apply([events[index]], {})
    view = read_model.get_order("a")
    assert view is not None and view.status is Status.DELIVERED
    assert statuses(read_model, "a") == [100, 200, 300, 400], "each status once, in time order"


def test_a_status_before_its_order_is_kept_and_filled_in_later(read_model: ReadModel) -> None:
    read_model.apply([StatusChanged("a", Status.IN_OVEN, T0 + 1)], {})
    early = read_model.get_order("a")
    assert early is not None and early.order is None and early.status is Status.IN_OVEN
    read_model.apply([placed("a")], {})
    view = read_model.get_order("a")
    assert view is not None and view.order is not None and view.customer_id == "c1"
    assert view.status is Status.IN_OVEN


def test_offsets_are_stored_with_the_batch(read_model: ReadModel) -> None:
    read_model.apply(progress("a"), {("pizza-ordered", 0): 5, ("pizza-status", 3): 9})
    read_model.apply([], {("pizza-status", 3): 12})
    assert read_model.stored_offsets() == {("pizza-ordered", 0): 5, ("pizza-status", 3): 12}


def test_a_failed_batch_stores_neither_events_nor_offsets(read_model: ReadModel) -> None:
    bad = StatusChanged("a", Status.IN_OVEN, T0)
    object.__setattr__(bad, "status", "not a status")  # breaks inside the transaction
    with pytest.raises(ValueError):
        read_model.apply([placed("a"), bad], {("pizza-ordered", 0): 1})
    assert read_model.get_order("a") is None
    assert read_model.stored_offsets() == {}


def test_orders_of_a_customer_are_theirs_only_newest_first(read_model: ReadModel) -> None:
    read_model.apply([placed("old", "c1", T0), placed("new", "c1", T0 + 5), placed("other", "c2", T0 + 9)], {})
    assert [v.order_id for v in read_model.orders_of("c1")] == ["new", "old"]
    assert [v.order_id for v in read_model.orders_of("c2")] == ["other"]


def test_history_after_gives_only_what_came_later(read_model: ReadModel) -> None:
    read_model.apply(progress("a")[:2], {})
    seen = read_model.history_after("a", 0)
    assert [e.status for e in seen] == [100, 200]
    read_model.apply(progress("a")[2:], {})
    later = read_model.history_after("a", seen[-1].seq)
    assert [e.status for e in later] == [300, 400]


def test_stuck_shows_until_the_order_moves_on(read_model: ReadModel) -> None:
    read_model.apply(progress("a")[:2] + [StatusChanged("a", Status.STUCK, T0 + 50)], {})
    assert read_model.get_order("a").status is Status.STUCK  # type: ignore[union-attr]
    read_model.apply(progress("a")[2:], {})
    assert read_model.get_order("a").status is Status.DELIVERED  # type: ignore[union-attr]


def test_status_after_keeps_final_statuses() -> None:
    assert status_after(Status.DELIVERED, Status.IN_OVEN) is Status.DELIVERED
    assert status_after(Status.DELIVERED, Status.STUCK) is Status.DELIVERED
    assert status_after(Status.INVALID_ORDER, Status.IN_OVEN) is Status.INVALID_ORDER
    assert status_after(Status.OUT_FOR_DELIVERY, Status.IN_OVEN) is Status.OUT_FOR_DELIVERY
    assert status_after(None, Status.IN_OVEN) is Status.IN_OVEN


def test_the_watchdog_marks_only_orders_that_stopped_moving(read_model: ReadModel) -> None:
    read_model.apply(progress("done") + progress("stalled")[:2] + [placed("fresh", at=T0 + 100_000)], {})
    marks = orders_to_mark_stuck(read_model, now=T0 + 120_000, stuck_after_ms=60_000)
    assert marks == [StatusChanged("stalled", Status.STUCK)]
    read_model.apply([StatusChanged("stalled", Status.STUCK, T0 + 120_000)], {})
    assert orders_to_mark_stuck(read_model, now=T0 + 500_000, stuck_after_ms=60_000) == [
        StatusChanged("fresh", Status.STUCK)], "an order already marked stuck is not marked again"
