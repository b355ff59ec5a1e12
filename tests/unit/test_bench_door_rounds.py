"""The front doors' rounds as the bench reports them: paired shop beside bare door, in turns."""

from __future__ import annotations

from pizzashop.bench.door_rounds import BARE, SHOP, DoorRound, DoorRounds


def a_round(door: str, rate: float, cpu: float) -> DoorRound:
    return DoorRound(door, rate, p99_ms=100.0, cpu_ms_per_order=cpu, answers={"201": 10})


def test_rounds_next_to_each_other_make_a_pair_of_shop_and_bare_door_whichever_came_first() -> None:
    rounds = DoorRounds(
        orders=10,
        concurrency=2,
        rounds=[
            a_round(BARE, 1000, 0.4),
            a_round(SHOP, 800, 0.5),
            a_round(SHOP, 900, 0.6),
            a_round(BARE, 1000, 0.4),
            a_round(BARE, 1000, 0.4),  # a round with no partner is in no pair
        ],
    )
    assert [(s.orders_per_second, b.door) for s, b in rounds.pairs()] == [(800, BARE), (900, BARE)]
    table = rounds.table()
    assert "pair 1: orders/s x0.80, p99 x1.00, CPU per order x1.25" in table
    assert "pair 2: orders/s x0.90" in table and "pair 3" not in table
    assert "shop: median 0.550 ms of CPU per order" in table
    assert rounds.as_json()["pairs"][1][0]["orders_per_second"] == 900
