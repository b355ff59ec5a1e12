"""A service's state: what it remembers of the orders it handled, and when it forgets them."""

from __future__ import annotations

from pizzashop.runtime.changelog import Change, ServiceState, changelog_value
from pizzashop.service import HANDLED

HOUR = 3_600_000
T0 = 1_700_000_000_000


def test_a_handled_order_is_forgotten_once_its_time_is_up() -> None:
    state = ServiceState(remember_for_ms=HOUR)
    state.change(3, {"a": HANDLED}, now_ms=T0)
    state.change(3, {"b": HANDLED}, now_ms=T0 + HOUR // 2)

    assert state.forget_handled(T0 + HOUR - 1) == 0
    assert state.forget_handled(T0 + HOUR) == 1
    assert state.of(3) == {"b": HANDLED}


def test_an_order_still_on_its_way_is_never_forgotten() -> None:
    state = ServiceState(remember_for_ms=HOUR)
    state.change(0, {"waiting": {"customer_id": "c1", "name": "Italo"}}, now_ms=T0)

    assert state.forget_handled(T0 + 1000 * HOUR) == 0
    assert "waiting" in state.of(0)


def test_handling_an_order_again_starts_its_time_again() -> None:
    state = ServiceState(remember_for_ms=HOUR)
    state.change(0, {"a": HANDLED, "b": HANDLED}, now_ms=T0)
    state.change(0, {"a": HANDLED}, now_ms=T0 + HOUR // 2)

    assert state.forget_handled(T0 + HOUR) == 1 and state.of(0) == {"a": HANDLED}
    assert state.forget_handled(T0 + HOUR + HOUR // 2) == 1 and state.of(0) == {}


def test_restoring_from_the_changelog_keeps_when_each_order_was_handled() -> None:
    state = ServiceState(remember_for_ms=HOUR)
    state.change(1, {"stale": HANDLED}, now_ms=T0)  # what this instance held before: replaced
    restored = state.restore(
        [1, 2],
        [
            Change(1, "old", HANDLED, T0),
            Change(2, "new", HANDLED, T0 + HOUR),
            Change(2, "gone", {"customer_id": "c1", "name": "Italo"}, T0),
            Change(2, "gone", None, T0 + 1),
        ],
    )

    assert restored == 2
    assert state.of(1) == {"old": HANDLED} and state.of(2) == {"new": HANDLED}
    assert state.forget_handled(T0 + HOUR) == 1 and state.of(1) == {}


def test_partitions_handed_over_take_their_state_with_them() -> None:
    state = ServiceState(remember_for_ms=HOUR)
    state.change(1, {"a": HANDLED}, now_ms=T0)
    state.change(2, {"b": HANDLED}, now_ms=T0)
    state.drop([1])

    assert state.of(1) == {}
    assert state.forget_handled(T0 + HOUR) == 1 and state.of(2) == {}


def test_the_changelog_keeps_orders_on_their_way_and_drops_handled_ones() -> None:
    """A handled order is known from its status on pizza-status: no record of its own."""
    assert (
        changelog_value({"customer_id": "c1", "name": "Italo"})
        == b'{"customer_id": "c1", "name": "Italo"}'
    )
    assert changelog_value(HANDLED) is None, "a tombstone: the order leaves the changelog"
    assert changelog_value(None) is None


def test_entries_that_waited_are_found_oldest_first_and_a_change_starts_their_wait_again() -> None:
    state = ServiceState(remember_for_ms=10_000)
    state.change(0, {"a": "baked", "b": HANDLED}, now_ms=1_000)
    state.change(1, {"c": {"customer_id": "x"}}, now_ms=2_000)
    state.change(0, {"d": "baked"}, now_ms=5_000)
    assert [(w.partition, w.order_id, w.since) for w in state.waiting_since(3_000)] == [
        (0, "a", 1_000),
        (1, "c", 2_000),
    ], "handled orders and young entries are not waiting"
    state.change(0, {"a": {"customer_id": "y"}}, now_ms=6_000)
    state.change(1, {"c": None}, now_ms=6_000)
    assert state.waiting_since(3_000) == []
    assert len(state) == 3  # a, b and d
