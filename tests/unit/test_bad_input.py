"""Whatever a client sends, the web app answers it: never a 5xx, and a 4xx produces nothing;
whatever bytes a record holds, the contract decodes them or says why (Hypothesis)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pizzashop import contract
from pizzashop.cli.views import order_line, order_report
from pizzashop.config import load_settings
from pizzashop.contract import ContractError, Order, Status, StatusChanged, Topic
from pizzashop.observe.inert import inert
from pizzashop.observe.logs import InertArguments, seed_lines
from pizzashop.readmodel import OrderView
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.web.app import create_app
from tests.unit.test_web import GOOD, AcknowledgingTaker, StoryTeller, csrf_of, signed_in

# Few examples each, so that the whole file takes seconds; each run tries new ones.
QUICK = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Any text, lone surrogates and control characters included (JSON can carry them all).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(ANY_TEXT, children, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = ("name", "sauce", "cheese", "main_topping", "extra_toppings")
ORDER_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "name": ANY_TEXT | st.integers() | st.none(),
        "sauce": ANY_TEXT | st.sampled_from(["Tomato", "Pesto"]),
        "cheese": ANY_TEXT | st.just("Mozzarella"),
        "main_topping": ANY_TEXT | st.just("Pepperoni"),
        "extra_toppings": st.lists(ANY_TEXT | st.just("Onion"), max_size=70) | JSON,
    },
)


@pytest.fixture
def taker() -> AcknowledgingTaker:
    return AcknowledgingTaker()


@pytest.fixture
def read_model(tmp_path: Path) -> ReadModel:
    return open_readmodel(f"sqlite:///{tmp_path / 'rm.sqlite3'}")


@pytest.fixture
def app_client(tmp_path: Path, read_model: ReadModel, taker: AcknowledgingTaker) -> TestClient:
    app_settings = load_settings(state_dir=tmp_path, secret_key="test-secret")
    app = create_app(app_settings, read_model, taker, StoryTeller())  # type: ignore[arg-type]  # a stand-in for the OrderTaker
    return signed_in(TestClient(app))


def post_json(client: TestClient, path: str, body: object, **headers: str) -> Any:
    """As a client in any language might send it: lone surrogates as JSON escapes (`\\ud800`)."""
    content = json.dumps(body, ensure_ascii=True)
    return client.post(
        path, content=content, headers={"Content-Type": "application/json", **headers}
    )


def as_a_browser_sends(form: dict[str, str]) -> dict[str, str]:
    """Form fields as a browser encodes them: what UTF-8 cannot carry becomes U+FFFD."""
    return {
        k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in form.items()
    }


def answered_well(response: Any, taker: AcknowledgingTaker, placed_before: int) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert len(taker.placed) == placed_before, "a refused order was produced"


@QUICK
@given(body=JSON)
def test_any_json_body_is_answered_without_a_5xx(
    app_client: TestClient, taker: AcknowledgingTaker, body: object
) -> None:
    before = len(taker.placed)
    answered_well(post_json(app_client, "/api/orders", body), taker, before)


@QUICK
@given(order=ORDER_LIKE)
def test_any_order_fields_are_answered_without_a_5xx(
    app_client: TestClient, taker: AcknowledgingTaker, order: dict[str, object]
) -> None:
    before = len(taker.placed)
    response = post_json(app_client, "/api/orders", {**GOOD, **order})
    answered_well(response, taker, before)
    if response.status_code == 422:
        fields = {problem["field"].split(".")[0] for problem in response.json()["detail"]}
        assert fields <= {*FIELDS, "order"}, fields


@QUICK
@given(raw=st.binary(max_size=200))
def test_any_bytes_as_a_body_are_answered_without_a_5xx(
    app_client: TestClient, taker: AcknowledgingTaker, raw: bytes
) -> None:
    before = len(taker.placed)
    headers = {"Content-Type": "application/json"}
    answered_well(app_client.post("/api/orders", content=raw, headers=headers), taker, before)


# What an HTTP header can carry: visible ASCII (a client's library refuses the rest).
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
POSITION = HEADER_TEXT | st.integers().map(str) | st.sampled_from([str(2**63), str(10**30)])


@QUICK
@given(key=HEADER_TEXT, position=POSITION)
def test_any_header_or_position_is_answered_without_a_5xx(
    app_client: TestClient, taker: AcknowledgingTaker, key: str, position: str
) -> None:
    before = len(taker.placed)
    response = app_client.post("/api/orders", json=GOOD, headers={"Idempotency-Key": key})
    answered_well(response, taker, before)
    # Asked by a customer with no orders: one with orders waits (up to 3 s) for the read model
    # to hold them before it says 404, and this read model is never fed.
    newcomer = signed_in(TestClient(app_client.app))
    stream = newcomer.get("/api/orders/no-such-order/events", params={"after": position})
    assert stream.status_code in (404, 422), stream.text


@QUICK
@given(form=st.dictionaries(st.sampled_from([*FIELDS, "idempotency_key"]), ANY_TEXT))
def test_any_form_fields_are_answered_without_a_5xx(
    app_client: TestClient, taker: AcknowledgingTaker, form: dict[str, str]
) -> None:
    before = len(taker.placed)
    csrf = csrf_of(app_client.get("/").text)
    response = app_client.post("/orders", data={**as_a_browser_sends(form), "csrf": csrf})
    answered_well(response, taker, before)


@pytest.mark.parametrize("padding", [70_000, 20_000_000], ids=["just over 64 KiB", "20 MB"])
def test_a_body_over_64_kib_is_413_without_being_read(
    app_client: TestClient, taker: AcknowledgingTaker, padding: int
) -> None:
    body = json.dumps({**GOOD, "padding": "x" * padding})
    response = app_client.post(
        "/api/orders", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert not taker.placed


@pytest.mark.parametrize("position", [str(10**30), str(2**63), "-1", "x"])
def test_a_stream_position_outside_0_to_2_63_is_422(
    app_client: TestClient, taker: AcknowledgingTaker, read_model: ReadModel, position: str
) -> None:
    app_client.post("/api/orders", json=GOOD)
    (placed,) = taker.placed
    # Delivered already: were the position taken, the stream would end at once, not hang.
    read_model.writer.apply([placed, StatusChanged(placed.order_id, Status.DELIVERED, 1)], {})
    events = f"/api/orders/{placed.order_id}/events"
    assert app_client.get(events, params={"after": position}).status_code == 422
    assert app_client.get(events, headers={"Last-Event-ID": position}).status_code == 422
    assert app_client.get(events, params={"after": str(2**63 - 1)}).status_code == 200


@settings(max_examples=200, deadline=None)
@given(topic=st.sampled_from(list(Topic)), key=st.binary(max_size=40) | st.none(),
       value=st.binary(max_size=300) | st.none())  # fmt: skip
def test_any_bytes_in_a_record_decode_or_say_why(
    topic: Topic, key: bytes | None, value: bytes | None
) -> None:
    try:
        contract.decode(str(topic), key, value, 1_700_000_000_000)
    except ContractError as e:
        assert str(e)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "x" * 1025}, "name"),
        ({"name": "Italo\n(msvc_status) ERROR forged"}, "name"),
        ({"name": "\x1b[2J"}, "name"),
        ({"name": "Ital\x00o"}, "name"),
        ({"name": "\u202eolatI"}, "name"),  # a right-to-left override
        ({"name": "\u200b\u200b"}, "name"),  # zero-width spaces only: nothing visible
        ({"name": "\ud800"}, "name"),  # a lone surrogate
        ({"sauce": "x" * 65}, "sauce"),
        ({"extra_toppings": ["Onion"] * 65}, "extra_toppings"),
    ],
)
def test_each_kind_of_bad_field_seen_is_a_422_naming_it(
    app_client: TestClient, taker: AcknowledgingTaker, change: dict[str, object], field: str
) -> None:
    response = post_json(app_client, "/api/orders", {**GOOD, **change})
    assert response.status_code == 422, response.text
    assert field in {problem["field"].split(".")[0] for problem in response.json()["detail"]}
    assert not taker.placed


FORGERIES = ["Italo\n(msvc_status) ERROR forged", "\x1b[2J\x1b[31mred", "\u202eolatI", "a\ud800b"]


@pytest.mark.parametrize("text", FORGERIES)
def test_text_from_outside_is_inert_in_log_lines_and_in_the_terminal(text: str) -> None:
    shown = inert(text)
    assert shown.isprintable() and "\n" not in shown
    assert inert("Zoë's 🍕 pizza") == "Zoë's 🍕 pizza"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(seed_lines("status"))
    handler.addFilter(InertArguments())
    logger = logging.getLogger("unit.inert")
    logger.handlers[:], logger.propagate = [handler], False
    logger.warning("Order '%s' status updated", text)
    assert stream.getvalue().count("\n") == 1, "one record, one line"
    order = Order.model_construct(customer_id="c", name=text, sauce="Tomato", cheese="Gouda",
                                  main_topping="Pork", extra_toppings=[])  # fmt: skip
    view = OrderView(order_id="o-1", customer_id="c", order=order, placed_at=1, status=Status.RECEIVED,
                     history=(), updated_at=1)  # fmt: skip
    for terminal_text in (order_line(view), order_report(view)):
        assert "\x1b" not in terminal_text and "\u202e" not in terminal_text
        assert all(line.isprintable() for line in terminal_text.splitlines())
