"""What the read model keeps of the pantry: each ingredient's level, last one wins, and the
ingredient a sold-out order was short of; a database of an older shape is refused.

Every test runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from pizzashop.config import Settings
from pizzashop.contract import (
    Event,
    ReservationDecided,
    ReservationEnded,
    Status,
    StatusChanged,
    StockLevel,
)
from pizzashop.readmodel import SCHEMA_VERSION, OrderView, ReadModelUnusable
from pizzashop.readmodel.generations import generations_of
from pizzashop.readmodel.pantry import stock_levels
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.readmodel.writer import apply_to
from tests.unit.shop_events import T0, placed

ITS_INGREDIENTS = ("Tomato", "Mozzarella", "Pepperoni", "Mushroom")


def write(read_model: ReadModel, *events: Event) -> None:
    """As the status service writes a batch, its offsets with it."""
    apply_to(read_model.writer, list(events), {("pizza-stock", 0): len(events)})


def sold_out(order_id: str, ingredient: str = "Mushroom") -> ReservationDecided:
    return ReservationDecided(order_id, ITS_INGREDIENTS, sold_out=ingredient)


def view_of(read_model: ReadModel, order_id: str) -> OrderView:
    view = read_model.orders.get_order(order_id)
    assert view is not None, f"{order_id} is not in the read model"
    return view


def stock_updated_at(read_model: ReadModel) -> dict[str, int]:
    with read_model.database.transaction(writing=False) as cursor:
        cursor.execute("SELECT ingredient, updated_at FROM stock")
        return {ingredient: updated_at for ingredient, updated_at in cursor.fetchall()}


def test_stock_levels_are_stored_and_the_last_one_wins(read_model: ReadModel) -> None:
    assert read_model.orders.stock() == {}, "no ingredient has moved yet"
    write(read_model, StockLevel("Mushroom", 9), StockLevel("Pesto", 4), StockLevel("Mushroom", 8))
    assert read_model.orders.stock() == {"Mushroom": 8, "Pesto": 4}
    write(read_model, StockLevel("Pesto", 0))
    assert read_model.orders.stock() == {"Mushroom": 8, "Pesto": 0}


def test_a_stock_level_applied_twice_is_applied_once(read_model: ReadModel) -> None:
    levels = [StockLevel("Mushroom", 8), StockLevel("Onion", 3)]
    write(read_model, *levels)
    before = (read_model.orders.stock(), stock_updated_at(read_model))
    write(read_model, *levels)
    assert (read_model.orders.stock(), stock_updated_at(read_model)) == before


def test_every_ingredient_has_a_level_stored_or_its_starting_stock() -> None:
    settings = Settings(pantry_default_stock=50, pantry_stock={"Pesto": 7, "Onion": 2})
    levels = stock_levels({"Onion": 0, "Mushroom": 12, "Not on the menu": 5}, settings)
    assert (levels["Onion"], levels["Mushroom"], levels["Pesto"], levels["Tomato"]) == (
        0,
        12,
        7,
        50,
    )
    assert "Not on the menu" not in levels and len(levels) == 24


def test_a_sold_out_order_says_which_ingredient_ran_out(read_model: ReadModel) -> None:
    write(read_model, placed("a"), sold_out("a"), StatusChanged("a", Status.SOLD_OUT, T0 + 1))
    view = view_of(read_model, "a")
    assert view.status is Status.SOLD_OUT and view.status_text == "Sold out: Mushroom"
    shown = view.as_dict()
    assert (shown["sold_out"], shown["status_text"]) == ("Mushroom", "Sold out: Mushroom")
    assert [e.status for e in view.history] == [Status.RECEIVED, Status.SOLD_OUT]


def test_the_pantrys_answer_read_before_its_order_is_kept(read_model: ReadModel) -> None:
    # pizza-reserved and pizza-ordered are read side by side: a rebuild may get an answer first.
    write(read_model, sold_out("a", "Pesto"))
    assert read_model.orders.get_order("a") is None, "an answer alone is no order"
    write(read_model, placed("a"), StatusChanged("a", Status.SOLD_OUT, T0 + 1))
    assert view_of(read_model, "a").status_text == "Sold out: Pesto"


def test_an_order_answered_twice_keeps_its_first_answer(read_model: ReadModel) -> None:
    write(read_model, placed("a"), sold_out("a", "Pesto"))
    write(read_model, sold_out("a", "Pesto"), sold_out("a", "Onion"))
    assert view_of(read_model, "a").sold_out == "Pesto"


def test_reserved_answers_and_ended_reservations_are_not_stored(read_model: ReadModel) -> None:
    write(
        read_model,
        placed("a"),
        ReservationDecided("a", ITS_INGREDIENTS),
        ReservationEnded("a", ITS_INGREDIENTS, used=True),
        StatusChanged("a", Status.IN_OVEN, T0 + 1),
    )
    view = view_of(read_model, "a")
    assert view.sold_out is None and view.as_dict()["sold_out"] is None
    assert view.status_text == "Your pizza is in the oven"


def test_a_sold_out_order_without_its_ingredient_keeps_its_status_text(
    read_model: ReadModel,
) -> None:
    write(read_model, placed("a"), StatusChanged("a", Status.SOLD_OUT, T0 + 1))
    assert view_of(read_model, "a").status_text == Status.SOLD_OUT.text


def test_a_read_model_of_schema_version_1_is_refused_with_the_rebuild(url: str) -> None:
    model = generations_of(url).open(1)
    with model.transaction(writing=True) as cursor:  # as the release before the pantry left it
        cursor.execute("UPDATE schema_version SET version = 1")
    model.close()

    needs = f"version 1, this code needs {SCHEMA_VERSION}: run `pizzashop readmodel rebuild`"
    with pytest.raises(ReadModelUnusable, match=needs):
        open_readmodel(url)


def test_a_read_model_from_before_versions_is_version_1_once_it_holds_orders(url: str) -> None:
    model = open_readmodel(url)
    model.writer.apply([placed("a")], {})
    with model.database.transaction(writing=True) as cursor:
        cursor.execute("DELETE FROM schema_version")
    model.close()

    with pytest.raises(ReadModelUnusable, match="version 1, this code needs"):
        open_readmodel(url)


def test_an_empty_read_model_from_before_versions_takes_this_codes_version(url: str) -> None:
    model = open_readmodel(url)
    with model.database.transaction(writing=True) as cursor:
        cursor.execute("DELETE FROM schema_version")
    model.close()

    open_readmodel(url).close()
    database = generations_of(url).open(1)
    with database.transaction(writing=False) as cursor:
        cursor.execute("SELECT version FROM schema_version")
        assert [row[0] for row in cursor.fetchall()] == [SCHEMA_VERSION]
    database.close()
