"""The operator page's pantry: every ingredient's stock, and a restock form that sends through
the order desk, once per form, and refuses what cannot be a restock before anything is sent."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from pizzashop.commands.ordering import OrderUnconfirmed
from pizzashop.contract import Event, Restock, StockLevel
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.readmodel.writer import apply_to
from pizzashop.service import NOTHING_TO_DO
from pizzashop.services.pantry import pantry
from tests.unit.test_bad_input import ANY_TEXT, QUICK, as_a_browser_sends
from tests.unit.test_operator_page import BEARER, TOKEN, operator_client
from tests.unit.test_web import AcknowledgingTaker


class UnansweringTaker(AcknowledgingTaker):
    """The broker's answer never comes: the restock may or may not be in the log."""

    async def send_async(self, event: Event, partition: int = -1) -> None:
        raise OrderUnconfirmed("the broker at 127.0.0.1:9092 did not answer within 6s")


@pytest.fixture
def read_model(tmp_path: Path) -> Iterator[ReadModel]:
    model = open_readmodel(f"sqlite:///{tmp_path / 'rm.sqlite3'}")
    yield model
    model.close()


@pytest.fixture
def taker() -> AcknowledgingTaker:
    return AcknowledgingTaker()


@pytest.fixture
def operator(tmp_path: Path, read_model: ReadModel, taker: AcknowledgingTaker) -> TestClient:
    """The operator's browser, the page open (the token kept in its session)."""
    client = operator_client(tmp_path, read_model, TOKEN)
    client.app.state.desk.taker = taker  # type: ignore[attr-defined]  # the app under test
    client.app.state.stock._fresh_for = 0  # type: ignore[attr-defined]  # no wait in a test
    assert client.get("/admin/pipeline", params={"token": TOKEN}).status_code == 200
    return client


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"the page's form has no {name}"
    return match.group(1)


def the_form(
    operator: TestClient, ingredient: str = "Mushroom", amount: str = "5"
) -> dict[str, str]:
    """The restock form as the page draws it, filled in."""
    page = operator.get("/admin/pipeline").text
    return {
        "csrf": hidden(page, "csrf"),
        "restock_key": hidden(page, "restock_key"),
        "ingredient": ingredient,
        "amount": amount,
    }


def restocks_sent(taker: AcknowledgingTaker) -> list[Restock]:
    assert all(partition == 0 for _, partition in taker.sent), "pizza-pantry has one partition"
    return [event for event, _ in taker.sent if isinstance(event, Restock)]


def test_the_page_shows_every_ingredients_stock_and_a_form_to_restock(
    operator: TestClient, read_model: ReadModel
) -> None:
    apply_to(read_model.writer, [StockLevel("Mushroom", 0), StockLevel("Pesto", 1_234)], {})
    page = operator.get("/admin/pipeline").text
    rows = dict(
        re.findall(r'<tr data-ingredient="([^"]+)"[^>]*><th>[^<]+</th><td data-left>([^<]+)<', page)
    )
    assert len(rows) == 24 and (rows["Mushroom"], rows["Pesto"]) == ("0", "1,234")
    assert rows["Onion"] == "10,000", "an ingredient that never moved shows its starting stock"
    assert '<tr data-ingredient="Mushroom" class="sold-out">' in page
    assert 'action="/admin/restock"' in page and len(re.findall(r"<option", page)) == 24
    assert '<script src="/static/pantry.js" defer></script>' in page


def test_a_restock_is_sent_through_the_desk_and_the_page_says_so_once(
    operator: TestClient, taker: AcknowledgingTaker
) -> None:
    form = the_form(operator, "Black olives", "1500")
    answer = operator.post("/admin/restock", data=form, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/pipeline"
    (sent,) = restocks_sent(taker)
    assert (sent.ingredient, sent.amount) == ("Black olives", 1500)
    page = operator.get("/admin/pipeline").text
    assert "Sent to the pantry: 1,500 more Black olives." in page
    assert hidden(page, "restock_key") != form["restock_key"], "a new form for the next restock"
    assert "Sent to the pantry" not in operator.get("/admin/pipeline").text, "said once"


def test_the_same_form_sent_twice_is_one_restock_and_a_changed_one_another(
    operator: TestClient, taker: AcknowledgingTaker
) -> None:
    form = the_form(operator, "Onion", "3")
    for _ in range(2):  # a double click, or the form sent again after a lost answer
        assert operator.post("/admin/restock", data=form).status_code == 200
    operator.post("/admin/restock", data={**form, "amount": "4"})
    first, again, changed = restocks_sent(taker)
    assert first.restock_id == again.restock_id != changed.restock_id
    state: dict[str, object] = {}
    state.update(pantry(first, state, lambda _: 0).state)
    assert pantry(again, state, lambda _: 0) is NOTHING_TO_DO, "the pantry counts it once"


NOT_A_RESTOCK = [
    ("Pineapple", "5", "Not restocked: 'Pineapple' is not on the menu."),
    ("Mushroom", "0", "Not restocked: a restock is 1 to 1,000,000, not 0."),
    ("Mushroom", "1000001", "Not restocked: a restock is 1 to 1,000,000, not 1000001."),
    ("Mushroom", "-3", "the amount is a whole number from 1 to 1,000,000, not '-3'"),
    ("Mushroom", "2.5", "the amount is a whole number from 1 to 1,000,000, not '2.5'"),
    ("Mushroom", "five", "the amount is a whole number from 1 to 1,000,000, not 'five'"),
    ("Mushroom", "", "the amount is a whole number from 1 to 1,000,000, not ''"),
    ("Mushroom", "9" * 5000, "the amount is a whole number from 1 to 1,000,000"),
]


@pytest.mark.parametrize(("ingredient", "amount", "said"), NOT_A_RESTOCK)
def test_what_cannot_be_a_restock_is_a_422_saying_why_and_nothing_is_sent(
    operator: TestClient, taker: AcknowledgingTaker, ingredient: str, amount: str, said: str
) -> None:
    form = the_form(operator, ingredient, amount)
    answer = operator.post("/admin/restock", data=form)
    assert answer.status_code == 422
    assert said in html.unescape(answer.text)
    assert taker.sent == []
    assert hidden(answer.text, "restock_key") == form["restock_key"], "the same form, to correct"
    if len(amount) < 10:
        assert f'value="{amount}" required' in answer.text, "the amount sent is kept"


def test_a_form_without_its_restock_key_sends_nothing(
    operator: TestClient, taker: AcknowledgingTaker
) -> None:
    form = {**the_form(operator), "restock_key": ""}
    answer = operator.post("/admin/restock", data=form)
    assert answer.status_code == 422 and "no usable restock key" in answer.text
    assert taker.sent == [] and hidden(answer.text, "restock_key") != ""


def test_only_the_operator_can_restock(
    tmp_path: Path, read_model: ReadModel, operator: TestClient, taker: AcknowledgingTaker
) -> None:
    form = the_form(operator)
    stranger = operator_client(tmp_path, read_model, TOKEN)
    assert stranger.post("/admin/restock", data=form).status_code == 401
    wrong = {"Authorization": "Bearer guess"}
    assert stranger.post("/admin/restock", data=form, headers=wrong).status_code == 403
    closed = operator_client(tmp_path, read_model, None)
    assert closed.post("/admin/restock", data=form, headers=BEARER).status_code == 404
    assert taker.sent == []


def test_the_restock_form_needs_the_pages_anti_forgery_token(
    operator: TestClient, taker: AcknowledgingTaker
) -> None:
    form = {**the_form(operator), "csrf": "forged"}
    assert operator.post("/admin/restock", data=form).status_code == 403
    assert taker.sent == []


def test_a_restock_the_broker_refused_is_a_503_and_one_unconfirmed_a_504_safe_to_send_again(
    operator: TestClient, taker: AcknowledgingTaker
) -> None:
    form = the_form(operator)
    taker.broker_down = True
    refused = operator.post("/admin/restock", data=form)
    assert refused.status_code == 503 and "nothing was sent" in refused.text
    operator.app.state.desk.taker = UnansweringTaker()  # type: ignore[attr-defined]  # the app under test
    unconfirmed = operator.post("/admin/restock", data=form)
    assert unconfirmed.status_code == 504
    assert "Sending this form again is safe: it counts once." in unconfirmed.text
    assert hidden(unconfirmed.text, "restock_key") == form["restock_key"]


@QUICK
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "ingredient": ANY_TEXT | st.sampled_from(["Mushroom", "Onion"]),
            "amount": ANY_TEXT | st.integers().map(str),
            "restock_key": ANY_TEXT,
        },
    )
)
def test_any_restock_form_is_answered_without_a_5xx_and_a_refused_one_sends_nothing(
    operator: TestClient, taker: AcknowledgingTaker, fields: dict[str, str]
) -> None:
    """Whatever the fields hold (or lack), as a browser would send them."""
    before = len(taker.sent)
    form = {**the_form(operator), **as_a_browser_sends(fields)}
    answer = operator.post("/admin/restock", data=form, follow_redirects=False)
    assert answer.status_code < 500, (answer.status_code, answer.text)
    if answer.status_code >= 400:
        assert len(taker.sent) == before, "a refused restock was sent"
    else:
        assert len(taker.sent) in (before, before + 1), "one restock at most"
