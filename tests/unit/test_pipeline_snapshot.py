"""The pipeline snapshot, computed from a real read model and the broker's figures.

Every read model test runs against SQLite and, when its binaries are here, PostgreSQL.
"""

from __future__ import annotations

import threading
import time

from pizzashop.config import load_settings
from pizzashop.contract import OrderPlaced, Status, StatusChanged
from pizzashop.operator.pipeline import (
    BrokerFigures,
    BrokerReader,
    PipelineSnapshot,
    PipelineWatch,
    StageFigures,
    percentile,
    take_snapshot,
)
from pizzashop.readmodel.store import ReadModel
from tests.ports import free_port
from tests.unit.shop_events import T0, placed, stuck

IN_OVEN, OUT_FOR_DELIVERY, DELIVERED = Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED
NOW = T0 + 100_000  # the rate window is the 10 s before: from T0 + 90_000


def went(
    order_id: str, placed_at: int, *steps: tuple[Status, int]
) -> list[OrderPlaced | StatusChanged]:
    """An order placed at `placed_at` that reached each status the given ms later."""
    events: list[OrderPlaced | StatusChanged] = [placed(order_id, at=placed_at)]
    return events + [StatusChanged(order_id, status, placed_at + after) for status, after in steps]


def a_busy_shop(read_model: ReadModel) -> None:
    """Two orders delivered within the rate window, one at assemble, one in the oven, one stuck."""
    read_model.writer.apply(
        went("a", T0 + 91_000, (IN_OVEN, 1000), (OUT_FOR_DELIVERY, 4000), (DELIVERED, 6000))
        + went("b", T0 + 90_500, (IN_OVEN, 2000), (OUT_FOR_DELIVERY, 3000), (DELIVERED, 4000))
        + went("c", T0 + 99_000)
        + went("d", T0 + 10_000, (Status.IN_OVEN, 10_000))
        + went("e", T0)
        + [stuck("e", T0 + 50_000)]
        # Status events of an order never placed: not in anybody's works.
        + [StatusChanged("ghost", Status.IN_OVEN, T0 + 95_000)],
        {},
    )  # fmt: skip


def stage(snapshot: PipelineSnapshot, name: str) -> StageFigures:
    return next(s for s in snapshot.stages if s.name == name)


def test_each_stage_counts_the_orders_waiting_for_it_or_at_it(read_model: ReadModel) -> None:
    a_busy_shop(read_model)
    snapshot = take_snapshot(read_model.pipeline, None, NOW)
    in_works = {s.name: s.in_works for s in snapshot.stages}
    assert in_works == {"web": None, "assemble": 1, "bake": 1, "delivery": 0, "status": None}, (
        "c waits for assemble, d is in the oven; the stuck and the never placed are in no stage"
    )


def test_orders_per_second_count_the_statuses_reached_in_the_window(read_model: ReadModel) -> None:
    a_busy_shop(read_model)
    snapshot = take_snapshot(read_model.pipeline, None, NOW)
    per_second = {s.name: s.per_second for s in snapshot.stages}
    # In the last 10 s: a, b and c placed; a and b through every step; the ghost's 200 too.
    assert per_second == {"web": 0.3, "assemble": 0.3, "bake": 0.2, "delivery": 0.2, "status": 1.0}


def test_stage_times_are_percentiles_of_recent_orders(read_model: ReadModel) -> None:
    a_busy_shop(read_model)
    snapshot = take_snapshot(read_model.pipeline, None, NOW)
    times = {s.name: (s.p50_ms, s.p99_ms) for s in snapshot.stages}
    assert times == {
        "web": (None, None),
        "assemble": (2000, 10_000),  # a 1 s, b 2 s, d 10 s (older, but within five minutes)
        "bake": (1000, 3000),
        "delivery": (1000, 2000),
        "status": (None, None),
    }


def test_stage_times_leave_out_orders_that_finished_long_ago(read_model: ReadModel) -> None:
    a_busy_shop(read_model)
    an_hour_later = take_snapshot(read_model.pipeline, None, NOW + 3600_000)
    assert all(s.p50_ms is None and s.per_second == 0 for s in an_hour_later.stages)
    assert stage(an_hour_later, "bake").in_works == 1, "in the works is now, not a window"


def test_stuck_orders_are_counted_and_listed_with_the_stage_they_wait_for(
    read_model: ReadModel,
) -> None:
    a_busy_shop(read_model)
    snapshot = take_snapshot(read_model.pipeline, None, NOW)
    assert snapshot.stuck_count == 1
    assert [(o.order_id, o.stage, o.since) for o in snapshot.stuck] == [
        ("e", "assemble", T0 + 50_000)
    ]


def test_without_the_broker_the_rest_is_shown_and_lag_is_unknown(read_model: ReadModel) -> None:
    a_busy_shop(read_model)
    snapshot = take_snapshot(read_model.pipeline, None, NOW)
    assert not snapshot.broker_reachable and snapshot.dead_letters is None
    assert all(s.lag is None for s in snapshot.stages)
    assert stage(snapshot, "assemble").in_works == 1


def test_lag_is_summed_by_service_and_by_topic(read_model: ReadModel) -> None:
    broker = BrokerFigures(
        lag={
            "assemble": {("pizza-ordered", 0): 2, ("pizza-ordered", 1): 1},
            "delivery": {("pizza-ordered", 0): 0, ("pizza-baked", 3): 4},
        },
        dead_letters=7,
    )
    snapshot = take_snapshot(read_model.pipeline, broker, NOW)
    lags = {s.name: (s.group, s.lag, s.lag_by_topic) for s in snapshot.stages}
    assert lags == {
        "web": (None, None, {}),
        "assemble": ("pizza_assemble", 3, {"pizza-ordered": 3}),
        "bake": ("pizza_bake", 0, {}),
        "delivery": ("pizza_delivery", 4, {"pizza-baked": 4, "pizza-ordered": 0}),
        "status": ("pizza_status", 0, {}),
    }
    assert snapshot.broker_reachable and snapshot.dead_letters == 7


def test_the_snapshot_as_json_has_every_figure(read_model: ReadModel) -> None:
    a_busy_shop(read_model)
    shown = take_snapshot(read_model.pipeline, None, NOW).as_dict()
    assert [s["name"] for s in shown["stages"]] == ["web", "assemble", "bake", "delivery", "status"]
    assert set(shown["stages"][1]) == {
        "name",
        "group",
        "in_works",
        "per_second",
        "p50_ms",
        "p99_ms",
        "lag",
        "lag_by_topic",
    }
    assert list(shown["stuck"]) == [{"order_id": "e", "stage": "assemble", "since": T0 + 50_000}]


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7], 0.99) == 7
    assert percentile([4, 1, 3, 2], 0.5) == 2
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile(list(range(1, 101)), 0.50) == 50


def test_viewers_share_one_snapshot_a_second(read_model: ReadModel) -> None:
    readings: list[int] = []

    def read_broker() -> BrokerFigures:
        readings.append(1)
        return BrokerFigures({}, 0)

    watch = PipelineWatch(read_model.pipeline, read_broker)
    first = watch.snapshot()
    assert watch.snapshot() is first and len(readings) == 1
    always_new = PipelineWatch(read_model.pipeline, read_broker, fresh_for=0)
    always_new.snapshot()
    always_new.snapshot()
    assert len(readings) == 3


def test_while_one_viewer_waits_for_the_broker_the_others_get_the_last_snapshot(
    read_model: ReadModel,
) -> None:
    slow, asked, broker_answers = threading.Event(), threading.Event(), threading.Event()

    def broker() -> BrokerFigures:
        if not slow.is_set():
            return BrokerFigures({}, 0)
        asked.set()
        broker_answers.wait(10)
        return BrokerFigures({}, 1)

    watch = PipelineWatch(read_model.pipeline, broker, fresh_for=0)
    first = watch.snapshot()
    slow.set()
    waiting = threading.Thread(target=watch.snapshot)
    waiting.start()
    assert asked.wait(10), "the first viewer asks the broker"
    assert watch.snapshot() is first, "a second viewer does not wait for the broker"
    broker_answers.set()
    waiting.join(10)
    assert watch.snapshot().dead_letters == 1


def test_a_broker_that_does_not_answer_is_none_within_seconds() -> None:
    nobody = load_settings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    assert BrokerReader(nobody)() is None
    assert time.monotonic() - started < 10, "the broker's figures must not hold the page up"
