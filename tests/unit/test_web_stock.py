"""The pantry at the front door: the stock shown, a sold-out choice refused before anything
is produced, and the menu marked live."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pizzashop.contract import StockLevel
from pizzashop.readmodel.store import ReadModel
from tests.unit.test_web import GOOD, AcknowledgingTaker, signed_in


def run_out_of(read_model: ReadModel, ingredient: str, left: int = 0) -> None:
    read_model.writer.apply([StockLevel(ingredient, left)], {})  # type: ignore[list-item]  # the writer takes the pantry's levels too


def test_the_stock_lists_every_ingredient_with_its_starting_stock_until_it_moves(
    client: TestClient, read_model: ReadModel
) -> None:
    stock = client.get("/api/stock").json()["stock"]
    assert stock["Mushroom"] == 10_000 and len(stock) == 24
    run_out_of(read_model, "Mushroom", 7)
    client.app.state.stock._fresh_for = 0  # type: ignore[attr-defined]  # no wait in a test
    assert client.get("/api/stock").json()["stock"]["Mushroom"] == 7


def test_an_order_for_a_sold_out_choice_is_a_409_naming_it_and_nothing_is_produced(
    client: TestClient, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    run_out_of(read_model, "Onion")
    signed_in(client)
    answer = client.post("/api/orders", json=GOOD)
    assert answer.status_code == 409, answer.text
    assert answer.json()["detail"] == "sold out: Onion"
    assert taker.placed == []
    without_onion = {**GOOD, "extra_toppings": ["Mushroom"]}
    assert client.post("/api/orders", json=without_onion).status_code == 201


def test_the_menu_form_says_what_ran_out_and_keeps_the_choices(
    client: TestClient, read_model: ReadModel
) -> None:
    run_out_of(read_model, "Pesto")
    signed_in(client)
    page = client.get("/").text
    assert 'data-ingredient="Pesto"' in page and "/static/menu.js" in page
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    form = {**GOOD, "sauce": "Pesto", "csrf": csrf, "extra_toppings": "Onion"}
    answer = client.post("/orders", data=form)
    assert answer.status_code == 409
    assert "run out of Pesto" in answer.text
