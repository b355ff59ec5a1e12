"""Where in a rush the front door's slowest answers were asked."""

from __future__ import annotations

import math

from pizzashop.bench.front_door import slowest_sent


def test_the_slowest_hundredth_is_placed_in_time_from_the_first_request() -> None:
    started = 1_000.0
    sent_at = [started + n * 0.01 for n in range(300)]  # one request every 10 ms, for 3 s
    latencies = [50.0] * 300
    for n in (120, 121, 122):  # a pause 1.2 s in: three answers took long
        latencies[n] = 400.0
    assert slowest_sent(latencies, sent_at, started) == (1.2, 1.21, 1.22)


def test_a_run_shorter_than_a_hundred_answers_still_names_its_slowest() -> None:
    assert slowest_sent([10.0, 90.0, 20.0], [5.0, 5.5, 6.0], 5.0) == (0.5, 0.5, 0.5)


def test_without_answers_there_is_no_moment() -> None:
    assert all(math.isnan(s) for s in slowest_sent([], [], 0.0))
