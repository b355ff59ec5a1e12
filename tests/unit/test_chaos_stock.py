"""The pantry's conservation checks of a chaos run, each on hand-made records: a clean ledger
passes, and each way stock can go wrong is named."""

from __future__ import annotations

from pizzashop.chaos.stock import StockVerdict, check_stock
from pizzashop.contract import ReservationDecided, ReservationEnded, Restock, StockLevel
from pizzashop.contract.pantry import PantryEvent

START = 5
PIZZA = ("Tomato", "Gouda", "Mushroom")


def start(ingredient: str) -> int:
    return START


def reserved(order_id: str, *levels: StockLevel) -> list[PantryEvent]:
    return [ReservationDecided(order_id, PIZZA), *levels]


def ended(order_id: str, used: bool) -> ReservationEnded:
    return ReservationEnded(order_id, PIZZA, used)


def levels(left: int) -> list[StockLevel]:
    return [StockLevel(ingredient, left) for ingredient in PIZZA]


def check(
    events: list[PantryEvent], assembled: set[str], sent: dict[str, tuple[str, int]] | None = None
) -> StockVerdict:
    return check_stock(events, start, sent or {}, assembled)


def a_clean_ledger() -> list[PantryEvent]:
    """a used by its assembly, b released, c sold out of Truffle, and 3 more Mushroom sent
    twice."""
    restock = Restock("r1", "Mushroom", 3)
    return [
        *reserved("a", *levels(4)),
        *reserved("b", *levels(3)),
        ended("b", used=False),
        *levels(4),
        ReservationDecided("c", ("Tomato", "Gouda", "Truffle"), sold_out="Truffle"),
        restock,
        StockLevel("Mushroom", 7),
        restock,
    ]


def test_a_clean_ledger_balances_and_counts_each_outcome() -> None:
    verdict = check(a_clean_ledger(), assembled={"a"}, sent={"r1": ("Mushroom", 3)})
    assert verdict.problems == []
    assert (verdict.reserved, verdict.used, verdict.released, verdict.sold_out) == (2, 1, 1, 1)
    assert (verdict.restocks, verdict.restocks_sent_twice, verdict.ingredients) == (1, 1, 3)


def test_a_restock_counted_twice_breaks_the_balance() -> None:
    events = [*a_clean_ledger(), StockLevel("Mushroom", 10)]
    verdict = check(events, assembled={"a"})
    assert verdict.problems == [
        "Mushroom: start + restocked = 8, but used + reserved + left = 1 + 0 + 10 = 11"
    ]


def test_a_pizza_assembled_without_a_reservation_is_named() -> None:
    verdict = check(a_clean_ledger(), assembled={"a", "z"})
    assert verdict.problems == ["z: assembled without its ingredients reserved"]


def test_a_sold_out_order_that_was_assembled_is_named() -> None:
    verdict = check(a_clean_ledger(), assembled={"a", "c"})
    assert verdict.problems == ["c: assembled, yet the pantry was sold out of Truffle"]


def test_a_reservation_ended_twice_is_named_and_counted_once() -> None:
    verdict = check([*a_clean_ledger(), ended("b", used=False)], assembled={"a"})
    assert verdict.problems == ["b: its reservation ended 2 times"]


def test_a_reservation_released_for_an_assembled_pizza_is_named() -> None:
    verdict = check(a_clean_ledger(), assembled={"a", "b"})
    assert verdict.problems == ["b: its reservation was released, yet it was assembled"]


def test_a_use_ask_for_an_assembled_pizza_is_not_a_second_end() -> None:
    verdict = check([*a_clean_ledger(), ended("a", used=True)], assembled={"a"})
    assert verdict.problems == [] and verdict.used == 1


def test_a_reservation_used_for_a_pizza_never_assembled_is_named() -> None:
    events = [*reserved("a", *levels(4)), ended("a", used=True)]
    verdict = check(events, assembled=set())
    assert verdict.problems == ["a: its reservation was used, yet it was not assembled"]


def test_a_reservation_that_never_ended_is_named_and_still_balances() -> None:
    events = [*reserved("a", *levels(4))]
    verdict = check(events, assembled=set())
    assert verdict.problems == ["a: its ingredients are still reserved"]


def test_an_order_decided_twice_is_named() -> None:
    events = [*a_clean_ledger(), ReservationDecided("a", PIZZA)]
    verdict = check(events, assembled={"a"})
    assert verdict.problems == ["a: decided 2 times by the pantry"]


def test_a_level_below_zero_is_named() -> None:
    events = [*a_clean_ledger(), StockLevel("Mushroom", -1), StockLevel("Mushroom", 7)]
    verdict = check(events, assembled={"a"})
    assert verdict.problems == ["Mushroom: a level below zero (-1)"]


def test_an_acknowledged_restock_missing_from_the_log_is_named() -> None:
    sent = {"r1": ("Mushroom", 3), "r2": ("Onion", 1)}
    verdict = check(a_clean_ledger(), assembled={"a"}, sent=sent)
    assert verdict.problems == ["restock r2: acknowledged but not in pizza-pantry"]
