"""Whatever a client sends, the web app answers it: never a 5xx, and a 4xx produces nothing;
whatever bytes a record holds, the contract decodes them or says why (Hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pizzashop import contract
from pizzashop.config import load_settings
from pizzashop.contract import ContractError, Status, StatusChanged, Topic
from pizzashop.readmodel import ReadModel, open_readmodel
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
        fields = {problem["field"] for problem in response.json()["detail"]}
        assert fields <= {*FIELDS, "order"}, fields


@QUICK
@given(raw=st.binary(max_size=200))
def test_any_bytes_as_a_body_are_answered_without_a_5xx(
    app_client: TestClient, taker: AcknowledgingTaker, raw: bytes
) -> None:
    before = len(taker.placed)
    headers = {"Content-Type": "application/json"}
    answered_well(app_client.post("/api/orders", content=raw, headers=headers), taker, before)


@QUICK
@given(key=ANY_TEXT, position=ANY_TEXT | st.integers().map(str))
def test_any_header_or_position_is_answered_without_a_5xx(
    app_client: TestClient, taker: AcknowledgingTaker, key: str, position: str
) -> None:
    before = len(taker.placed)
    try:
        headers = {"Idempotency-Key": key, "Last-Event-ID": position}
        headers_sent = {
            k: v.encode("utf-8", "surrogatepass").decode("latin-1") for k, v in headers.items()
        }
    except UnicodeDecodeError:
        return
    response = app_client.post("/api/orders", json=GOOD, headers=headers_sent)
    answered_well(response, taker, before)
    answered_well(
        app_client.get("/api/orders/no-such-order", params={"after": position}), taker, before
    )


@QUICK
@given(form=st.dictionaries(st.sampled_from([*FIELDS, "idempotency_key"]), ANY_TEXT))
def test_any_form_fields_are_answered_without_a_5xx(
    app_client: TestClient, taker: AcknowledgingTaker, form: dict[str, str]
) -> None:
    before = len(taker.placed)
    csrf = csrf_of(app_client.get("/").text)
    fields = {
        k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in form.items()
    }
    response = app_client.post("/orders", data={**fields, "csrf": csrf})
    answered_well(response, taker, before)


def test_a_body_over_64_kib_is_refused_before_it_is_read(
    app_client: TestClient, taker: AcknowledgingTaker
) -> None:
    body = json.dumps({**GOOD, "padding": "x" * 70_000})
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
    read_model.apply([placed, StatusChanged(placed.order_id, Status.DELIVERED, 1)], {})
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
