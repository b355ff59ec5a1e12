"""What the read model keeps of the pantry: each ingredient's level, from `pizza-stock`, and the
ingredient an order was short of, from the pantry's answer on `pizza-reserved`.

Written by the status service's writer in the same transaction as the orders (writer.py); the
answers that reserved an order's ingredients, and the ends of reservations, are not kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pizzashop import menu
from pizzashop.config import Settings
from pizzashop.contract import Event, ReservationDecided, StockLevel, now_ms
from pizzashop.readmodel.database import Database, query


@dataclass
class PantryNews:
    """What one batch says of the pantry."""

    levels: dict[str, int] = field(default_factory=dict)  # ingredient -> its last level
    sold_out: dict[str, str] = field(default_factory=dict)  # order id -> the ingredient short

    @classmethod
    def of(cls, events: Iterable[Event]) -> PantryNews:
        news = cls()
        for event in events:
            if isinstance(event, StockLevel):
                # One partition, read in order: a later level replaces an earlier one.
                news.levels[event.ingredient] = event.left
            elif isinstance(event, ReservationDecided) and event.sold_out is not None:
                news.sold_out.setdefault(event.order_id, event.sold_out)
        return news

    def __bool__(self) -> bool:
        return bool(self.levels or self.sold_out)


def write_pantry_news(cursor: Any, placeholder: str, news: PantryNews) -> None:
    """Each level stored (`updated_at`: when it last changed), and each order's first answer."""
    p = placeholder
    cursor.executemany(
        f"INSERT INTO stock (ingredient, left_count, updated_at) VALUES ({p}, {p}, {p}) "
        "ON CONFLICT (ingredient) DO UPDATE SET left_count = excluded.left_count, "
        "updated_at = excluded.updated_at WHERE stock.left_count <> excluded.left_count",
        [(ingredient, left, now_ms()) for ingredient, left in sorted(news.levels.items())],
    )
    cursor.executemany(
        f"INSERT INTO sold_out (order_id, ingredient) VALUES ({p}, {p}) "
        "ON CONFLICT (order_id) DO NOTHING",
        sorted(news.sold_out.items()),
    )


def stored_stock(database: Database) -> dict[str, int]:
    """The levels stored: an ingredient that never moved has none."""
    rows = query(database, "SELECT ingredient, left_count FROM stock")
    return {str(ingredient): int(left) for ingredient, left in rows}


def stock_levels(stored: Mapping[str, int], settings: Settings) -> dict[str, int]:
    """Every ingredient on the menu and how much is left: its stored level, or the starting
    stock the settings give it until it first moves."""
    starting = menu.starting_stock(settings)
    return {
        ingredient: stored.get(ingredient, starting(ingredient)) for ingredient in menu.INGREDIENTS
    }
