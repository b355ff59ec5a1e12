"""How a rebalance's pause is read from the orders' times (chaos/rebalance.py)."""

from __future__ import annotations

from pizzashop.chaos.rebalance import extra_waits


def test_the_pause_is_the_longest_extra_wait_of_the_orders_around_the_event() -> None:
    accepted = {"before": 5.0, "just-before": 9.5, "after": 12.0, "long-after": 40.0}
    final = {"before": 5.2, "just-before": 12.5, "after": 13.0, "long-after": 40.2}
    waits = extra_waits(10.0, accepted, final, usual=0.2, window=20)
    assert max(waits) == 3.0 - 0.2, waits
    assert len(waits) == 2, "the orders long before and long after the event are not counted"


def test_no_order_waiting_longer_than_usual_is_no_pause() -> None:
    accepted, final = {"a": 10.5, "b": 11.0}, {"a": 10.6, "b": 11.1}
    assert extra_waits(10.0, accepted, final, usual=0.2) == [0.0, 0.0]
    assert extra_waits(10.0, {}, {}, usual=0.2) == [], "no order around it: nothing to say"
