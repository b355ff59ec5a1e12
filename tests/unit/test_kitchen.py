"""The kitchen without Kafka: per-order ordering, parallel work, commit watermarks, capacity,
and interrupting events that withdraw an order's work in progress."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pizzashop.contract import CancelRequested, PizzaBaked, Status, StatusChanged
from pizzashop.runtime.kitchen import Kitchen, PartitionProgress, Ticket, TopicPartition
from pizzashop.service import Work


def ticket(offset: int, key: str, partition: int = 0, topic: str = "pizza-baked") -> Ticket:
    return Ticket(topic=topic, partition=partition, offset=offset, key=key, event=PizzaBaked(key))


class Cooks:
    """Drives the kitchen as the runtime does: a ticket that gets a cook is handled at once."""

    def __init__(self, handle: Callable[[Ticket], Work], capacity: int) -> None:
        self.kitchen, self.handle = Kitchen(capacity), handle

    def _start_ready(self, now: float) -> None:
        for t in self.kitchen.ready_to_start():
            work = self.handle(t)
            self.kitchen.start(t, work, work.seconds, now)

    def take(self, t: Ticket, now: float) -> None:
        self.kitchen.take(t)
        self._start_ready(now)

    def finish(self, t: Ticket, now: float) -> None:
        self.kitchen.finish(t)
        self._start_ready(now)

    def forget(self, partitions: Iterable[TopicPartition], now: float) -> int:
        dropped = self.kitchen.forget(partitions)
        self._start_ready(now)
        return dropped

    def done_cooking(self, now: float) -> list[tuple[Ticket, Work]]:
        return self.kitchen.done_cooking(now)

    def committable(self) -> dict[TopicPartition, int]:
        return self.kitchen.committable()

    def is_full(self) -> bool:
        return self.kitchen.is_full()

    def __len__(self) -> int:
        return len(self.kitchen)


def kitchen_with_times(
    seconds_by_offset: dict[int, float], capacity: int = 0
) -> tuple[Cooks, list[int]]:
    started: list[int] = []

    def handle(t: Ticket) -> Work:
        started.append(t.offset)
        return Work(seconds=seconds_by_offset.get(t.offset, 0.0))

    return Cooks(handle, capacity=capacity), started


def test_watermark_waits_for_the_oldest_unfinished_offset() -> None:
    progress = PartitionProgress()
    for offset in (10, 11, 12):
        progress.take(offset)
    progress.finish(12)
    progress.finish(11)
    assert progress.committable() is None, "offset 10 is not finished, nothing may be committed"
    progress.finish(10)
    assert progress.committable() == 13


def test_out_of_order_completion_commits_only_the_finished_prefix() -> None:
    kitchen, _ = kitchen_with_times({0: 5.0, 1: 1.0, 2: 1.0})
    for offset, key in enumerate(("a", "b", "c")):
        kitchen.take(ticket(offset, key), now=0.0)
    done = kitchen.done_cooking(now=2.0)
    assert [t.offset for t, _ in done] == [1, 2]
    for t, _ in done:
        kitchen.finish(t, now=2.0)
    assert kitchen.committable() == {}, "offset 0 still cooks: no commit past it"
    ((slow, _),) = kitchen.done_cooking(now=5.0)
    kitchen.finish(slow, now=5.0)
    assert kitchen.committable() == {("pizza-baked", 0): 3}


def test_events_of_one_order_are_handled_in_order_others_in_parallel() -> None:
    kitchen, started = kitchen_with_times({0: 3.0, 1: 0.0, 2: 0.0})
    kitchen.take(ticket(0, "same"), now=0.0)
    kitchen.take(ticket(1, "same"), now=0.0)
    kitchen.take(ticket(2, "other"), now=0.0)
    assert started == [0, 2], "the second event of 'same' waits for the first"
    assert [t.offset for t, _ in kitchen.done_cooking(now=0.0)] == [2]
    ((first, _),) = kitchen.done_cooking(now=3.0)
    kitchen.finish(first, now=3.0)
    assert started == [0, 2, 1]


def test_many_orders_cook_at_once_not_one_after_another() -> None:
    times = {offset: 10.0 for offset in range(100)}
    kitchen, started = kitchen_with_times(times)
    for offset in range(100):
        kitchen.take(ticket(offset, f"order-{offset}"), now=0.0)
    assert len(started) == 100
    assert len(kitchen.done_cooking(now=10.0)) == 100, "all done after one pizza's time"


def test_full_kitchen_reports_back_pressure_until_work_finishes() -> None:
    kitchen, _ = kitchen_with_times({}, capacity=2)
    kitchen.take(ticket(0, "a"), now=0.0)
    assert not kitchen.is_full()
    kitchen.take(ticket(1, "b"), now=0.0)
    assert kitchen.is_full()
    t, _ = kitchen.done_cooking(now=0.0)[0]
    kitchen.finish(t, now=0.0)
    assert not kitchen.is_full()


def test_forgetting_a_partition_drops_its_work_and_keeps_the_rest() -> None:
    kitchen, _ = kitchen_with_times({0: 1.0, 1: 1.0})
    kitchen.take(ticket(0, "a", partition=0), now=0.0)
    kitchen.take(ticket(0, "b", partition=1), now=0.0)
    assert kitchen.forget([("pizza-baked", 0)], now=0.0) == 1
    assert len(kitchen) == 1
    ((t, _),) = kitchen.done_cooking(now=1.0)
    assert t.partition == 1
    kitchen.finish(t, now=1.0)
    assert kitchen.committable() == {("pizza-baked", 1): 1}


def test_finishing_work_of_a_forgotten_partition_changes_nothing() -> None:
    kitchen, _ = kitchen_with_times({0: 1.0})
    t = ticket(0, "a")
    kitchen.take(t, now=0.0)
    kitchen.forget([t.source], now=0.0)
    kitchen.take(ticket(0, "a"), now=0.5)  # the partition came back: the event is redone
    kitchen.finish(t, now=1.0)
    assert kitchen.committable() == {}, "the stale finish must not commit the redone event"


def test_no_more_cook_at_once_than_the_capacity_the_rest_wait_their_turn() -> None:
    kitchen, started = kitchen_with_times({offset: 1.0 for offset in range(5)}, capacity=2)
    for offset, key in enumerate(("a", "b", "c", "a", "d")):
        kitchen.take(ticket(offset, key), now=0.0)
    assert started == [0, 1], "two cooks"

    for t, _ in kitchen.done_cooking(now=1.0):
        kitchen.finish(t, now=1.0)
    assert started == [0, 1, 2, 4], "a's second event lines up once a's first is done, behind d"
    for t, _ in kitchen.done_cooking(now=2.0):
        kitchen.finish(t, now=2.0)
    assert started == [0, 1, 2, 4, 3]
    assert kitchen.committable() == {("pizza-baked", 0): 3}, "offset 3 is still cooking"


def test_a_forgotten_partition_frees_its_cooks_for_the_waiting_line() -> None:
    kitchen, started = kitchen_with_times({}, capacity=1)
    kitchen.take(ticket(0, "a", partition=0), now=0.0)
    kitchen.take(ticket(0, "b", partition=1), now=0.0)
    kitchen.forget([("pizza-baked", 0)], now=0.0)
    assert started == [0, 0] and len(kitchen) == 1, "b starts once a's partition is gone"


CANCEL = "pizza-cancel"


def a_cancel(offset: int, key: str, partition: int = 0) -> Ticket:
    return Ticket(CANCEL, partition, offset, key, CancelRequested(key, 0))


class Oven:
    """A kitchen whose baking (offsets of pizza-baked, 10 s with outputs) a cancel withdraws."""

    def __init__(self, capacity: int = 0) -> None:
        self.kitchen = Kitchen(capacity, interrupting_topics=frozenset({CANCEL}))
        self.withdrawn: list[Ticket | None] = []

    def take(self, t: Ticket, now: float) -> None:
        self.kitchen.take(t)
        self.start_ready(now)

    def start_ready(self, now: float) -> None:
        for t in self.kitchen.ready_to_start():
            if t.topic == CANCEL:
                self.withdrawn.append(self.kitchen.withdraw(t))
                work = Work([StatusChanged(t.key, Status.CANCELLED)], withdraws=True)
            else:
                work = Work([PizzaBaked(t.key)], seconds=10.0)
            self.kitchen.start(t, work, work.seconds, now)

    def serve(self, now: float) -> list[Ticket]:
        done = [t for t, _ in self.kitchen.done_cooking(now)]
        for t in done:
            self.kitchen.finish(t)
        self.start_ready(now)
        return done


def test_a_cancel_is_handled_at_once_and_withdraws_its_orders_baking() -> None:
    oven = Oven()
    baking = ticket(0, "a")
    oven.take(baking, now=0.0)
    oven.take(ticket(1, "b"), now=0.0)
    assert oven.kitchen.has_work_in_progress("a")
    oven.take(a_cancel(0, "a"), now=1.0)
    assert oven.withdrawn == [baking], "the cancel does not wait for the baking to be done"
    assert oven.kitchen.committable() == {}, "nothing is finished before the cancel's outputs"
    assert [t.topic for t in oven.serve(now=1.0)] == [CANCEL]
    assert oven.kitchen.committable() == {(CANCEL, 0): 1, ("pizza-baked", 0): 1}, (
        "the withdrawn offset is committed with the cancel's, and no further"
    )
    assert [t.key for t in oven.serve(now=10.0)] == ["b"], "the withdrawn baking never comes out"
    assert len(oven.kitchen) == 0


def test_a_cancel_after_the_baking_is_out_withdraws_nothing() -> None:
    oven = Oven()
    oven.take(ticket(0, "a"), now=0.0)
    assert [t.key for t in oven.serve(now=10.0)] == ["a"]
    assert not oven.kitchen.has_work_in_progress("a")
    oven.take(a_cancel(0, "a"), now=11.0)
    assert oven.withdrawn == [None], "too late: the baking's outputs are out"


def test_a_cancel_does_not_withdraw_work_without_outputs() -> None:
    kitchen = Kitchen(interrupting_topics=frozenset({CANCEL}))
    ignored = ticket(0, "a")
    kitchen.take(ignored)
    kitchen.ready_to_start()
    kitchen.start(ignored, Work(), 0.0, now=0.0)  # a copy of an order handled before
    assert not kitchen.has_work_in_progress("a")
    cancel = a_cancel(0, "a")
    kitchen.take(cancel)
    assert kitchen.ready_to_start() == [cancel]
    assert kitchen.withdraw(cancel) is None


def test_a_cancel_skips_the_line_of_a_full_kitchen_and_its_order_moves_on_after_it() -> None:
    oven = Oven(capacity=1)
    oven.take(ticket(0, "a"), now=0.0)
    second_copy = ticket(1, "a")
    oven.take(second_copy, now=0.0)
    oven.take(a_cancel(0, "a"), now=1.0)
    assert oven.withdrawn[0] is not None and oven.withdrawn[0].offset == 0
    oven.serve(now=1.0)
    assert [t.offset for t in oven.serve(now=11.0)] == [1], "the order's next event got a cook"


def test_forgetting_a_partition_drops_its_cancels_and_what_they_withdrew() -> None:
    oven = Oven()
    oven.take(ticket(0, "a"), now=0.0)
    oven.take(a_cancel(0, "a"), now=1.0)
    dropped = oven.kitchen.forget([(CANCEL, 0), ("pizza-baked", 0)])
    assert dropped == 2 and len(oven.kitchen) == 0
    assert oven.serve(now=20.0) == []
