"""The bench restocks, before its rush, what a used broker's pantry holds too little of: a
pantry's levels outlive its settings, and a rush that sells out measures the pantry, not
the kitchen."""

from __future__ import annotations

from typing import ClassVar

import pytest

from pizzashop.bench import stocking
from pizzashop.config import Settings
from pizzashop.contract import Event, Restock


class Taker:
    """The command side's producer, noting what it is asked to send."""

    sent: ClassVar[list[tuple[Event, int]]] = []

    def __init__(self, settings: Settings) -> None:
        pass

    def send(self, event: Event, partition: int = -1) -> None:
        Taker.sent.append((event, partition))

    def close(self) -> None:
        pass


def test_what_the_pantry_holds_too_little_of_is_restocked_to_what_the_rush_needs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    levels = {"Eggs": 1, "Tomato": 5_000, "Onion": 0, "Truffle": 0}
    monkeypatch.setattr(stocking, "recorded_levels", lambda settings: levels)
    monkeypatch.setattr(stocking, "OrderTaker", Taker)
    Taker.sent = []
    sent = stocking.stock_for_the_rush(Settings(), needed=60)
    assert sent == {"Eggs": 59, "Onion": 60}, "Tomato has enough; Truffle is not on the menu"
    restocks = [(e.ingredient, e.amount, p) for e, p in Taker.sent if isinstance(e, Restock)]
    assert restocks == [("Eggs", 59, 0), ("Onion", 60, 0)]
    assert len({e.order_id for e, _ in Taker.sent}) == 2, "each restock its own id"
    assert "restocked 59 Eggs, 60 Onion" in caplog.text


def test_a_pantry_that_never_moved_needs_no_restock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stocking, "recorded_levels", lambda settings: {})
    monkeypatch.setattr(stocking, "OrderTaker", Taker)
    Taker.sent = []
    assert stocking.stock_for_the_rush(Settings(), needed=60) == {}
    assert Taker.sent == []
