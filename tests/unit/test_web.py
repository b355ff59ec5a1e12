"""The web layer with a real SQLite read model and a stand-in for the broker's acknowledgement."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from pizzashop import contract, menu
from pizzashop.asyncapi import asyncapi_text
from pizzashop.commands.ordering import OrderNotAccepted, OrderUnconfirmed, Written
from pizzashop.config import load_settings
from pizzashop.contract import (
    CancelRequested,
    Event,
    Order,
    OrderPlaced,
    Status,
    StatusChanged,
    StockLevel,
)
from pizzashop.operator.story import StoryRecord, StoryUnreadable
from pizzashop.readmodel import OrderView
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.readmodel.writer import apply_to
from pizzashop.web.app import create_app
from tests.shop_harness import served, wait_for

GOOD = {
    "name": "Italo",
    "sauce": "Tomato",
    "cheese": "Mozzarella",
    "main_topping": "Pepperoni",
    "extra_toppings": ["Mushroom", "Onion"],
}


class AcknowledgingTaker:
    """Stands in for OrderTaker: records what would have been produced."""

    def __init__(self) -> None:
        self.placed: list[OrderPlaced] = []
        self.sent: list[tuple[Event, int]] = []  # other events, with the partition asked for
        self.broker_down = False
        self.unanswered = False  # the broker's answer does not come: the order may be in the log

    async def place_async(self, order: Order, order_id: str) -> tuple[OrderPlaced, Written]:
        if self.broker_down:
            raise OrderNotAccepted("the broker refused it: Broker: Topic authorization failed")
        event = OrderPlaced(order_id, order, contract.now_ms())
        if self.unanswered:
            self.placed.append(event)
            raise OrderUnconfirmed("the broker at 127.0.0.1:9092 did not answer within 6s")
        self.placed.append(event)
        return event, Written(partition=0, offset=len(self.placed) - 1)

    async def send_async(self, event: Event, partition: int = -1) -> None:
        if self.broker_down:
            raise OrderNotAccepted("the broker refused it: Broker: Topic authorization failed")
        self.sent.append((event, partition))


class StoryTeller:
    """Stands in for reading an order's records from Kafka: two records of whatever order."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.broker_away = False

    def __call__(self, view: OrderView) -> list[StoryRecord]:
        self.asked.append(view.order_id)
        if self.broker_away:
            raise StoryUnreadable("the Kafka broker at 127.0.0.1:9092 did not answer within 5s")
        return [
            StoryRecord("pizza-ordered", 3, 15, 1_000, "ordering", '{"order":{}}', "4bf9" * 8),
            StoryRecord("pizza-status", 3, 40, 2_203, "assemble", '{"status":200}', None, 1_203),
        ]


@pytest.fixture
def story_teller() -> StoryTeller:
    return StoryTeller()


@pytest.fixture
def read_model(tmp_path: Path) -> Iterator[ReadModel]:
    model = open_readmodel(f"sqlite:///{tmp_path / 'rm.sqlite3'}")
    yield model
    model.close()


@pytest.fixture
def taker() -> AcknowledgingTaker:
    return AcknowledgingTaker()


@pytest.fixture
def client(
    tmp_path: Path, read_model: ReadModel, taker: AcknowledgingTaker, story_teller: StoryTeller
) -> TestClient:
    settings = load_settings(state_dir=tmp_path, secret_key="test-secret")
    return TestClient(create_app(settings, read_model, taker, story_teller))  # type: ignore[arg-type]  # a stand-in for the OrderTaker


def signed_in(client: TestClient, name: str = "Italo") -> TestClient:
    assert client.post("/api/session", json={"name": name}).status_code == 201
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no anti-forgery token"
    return match.group(1)


# --- the JSON API ------------------------------------------------------------------------------


def test_placing_an_order_produces_it_and_answers_201(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    response = signed_in(client).post("/api/orders", json=GOOD)
    assert response.status_code == 201, response.text
    (placed,) = taker.placed
    assert response.json()["order_id"] == placed.order_id
    assert placed.order.extra_toppings == ["Mushroom", "Onion"]


def test_the_customer_comes_from_the_session_not_the_body(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    customer = signed_in(client).post("/api/session", json={"name": "Ada"}).json()["customer_id"]
    client.post("/api/orders", json={**GOOD, "customer_id": "someone-else"})
    assert taker.placed[0].order.customer_id == customer


@pytest.mark.parametrize(
    "change, field",
    [
        ({"sauce": None}, "sauce"),
        ({"sauce": "Ketchup"}, "sauce"),
        ({"cheese": "Brie"}, "cheese"),
        ({"main_topping": "Tofu"}, "main_topping"),
        ({"extra_toppings": ["Glitter"]}, "extra_toppings"),
        ({"name": ""}, "name"),
        ({"name": "x" * 41}, "name"),
        (
            {"extra_toppings": [*menu.EXTRA_TOPPINGS, "Onion"]},  # every extra, one twice
            "extra_toppings",
        ),
    ],
)
def test_bad_orders_get_a_4xx_naming_the_field_and_nothing_is_produced(
    client: TestClient, taker: AcknowledgingTaker, change: dict[str, object], field: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    response = signed_in(client).post("/api/orders", json=body)
    assert response.status_code == 422, response.text
    assert field in [problem["field"] for problem in response.json()["detail"]], response.json()
    assert taker.placed == []


def test_malformed_json_is_a_400_and_nothing_is_produced(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    response = signed_in(client).post(
        "/api/orders", content=b'{"name": "Italo",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "body"
    assert taker.placed == []


def test_a_json_post_sent_as_a_form_is_refused(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    response = signed_in(client).post(
        "/api/orders", content=b'{"name": "x"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code in (400, 415, 422)
    assert taker.placed == []


def test_an_order_is_refused_with_503_when_the_broker_does_not_acknowledge(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    taker.broker_down = True
    response = signed_in(client).post("/api/orders", json=GOOD)
    assert response.status_code == 503
    assert "cannot take orders" in response.json()["detail"]


def test_the_same_idempotency_key_is_the_same_order_and_it_is_produced_once(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    signed_in(client)
    first = client.post("/api/orders", json=GOOD, headers={"Idempotency-Key": "k-1"})
    again = client.post("/api/orders", json=GOOD, headers={"Idempotency-Key": "k-1"})
    other = client.post("/api/orders", json=GOOD, headers={"Idempotency-Key": "k-2"})

    assert first.status_code == again.status_code == other.status_code == 201, again.text
    assert again.json()["order_id"] == first.json()["order_id"] != other.json()["order_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(taker.placed) == 2, "the retry was answered from what the shop knows"


def test_an_order_without_a_key_gets_one_to_retry_with(client: TestClient) -> None:
    response = signed_in(client).post("/api/orders", json=GOOD)
    key = response.headers["Idempotency-Key"]
    again = client.post("/api/orders", json=GOOD, headers={"Idempotency-Key": key})
    assert again.json()["order_id"] == response.json()["order_id"]


def test_two_customers_with_the_same_key_get_two_orders(
    tmp_path: Path, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    settings = load_settings(state_dir=tmp_path, secret_key="test-secret")
    ids = []
    for name in ("Ada", "Bob"):
        customer = signed_in(TestClient(create_app(settings, read_model, taker)), name)  # type: ignore[arg-type]  # a stand-in for the OrderTaker
        ids.append(
            customer.post("/api/orders", json=GOOD, headers={"Idempotency-Key": "same"}).json()[
                "order_id"
            ]
        )
    assert ids[0] != ids[1]


def test_a_key_used_for_another_order_is_a_422_naming_the_header(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    signed_in(client).post("/api/orders", json=GOOD, headers={"Idempotency-Key": "k-1"})
    response = client.post(
        "/api/orders", json={**GOOD, "sauce": "Pesto"}, headers={"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "Idempotency-Key"
    assert len(taker.placed) == 1


def test_a_key_that_cannot_be_one_is_a_422(client: TestClient, taker: AcknowledgingTaker) -> None:
    for bad in ("", "x" * 256, "tab\there"):
        response = signed_in(client).post(
            "/api/orders", json=GOOD, headers={"Idempotency-Key": bad}
        )
        assert response.status_code == 422, (bad, response.text)
    assert taker.placed == []


def test_an_unanswered_order_is_a_504_that_says_a_retry_with_the_key_is_safe(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    taker.unanswered = True
    response = signed_in(client).post("/api/orders", json=GOOD, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 504, "not 503: the order may well be in the log"
    assert "same Idempotency-Key is safe" in response.json()["detail"]
    assert response.headers["Idempotency-Key"] == "k-1"

    taker.unanswered = False
    retried = client.post("/api/orders", json=GOOD, headers={"Idempotency-Key": "k-1"})
    assert retried.status_code == 201
    assert {p.order_id for p in taker.placed} == {retried.json()["order_id"]}, (
        "both attempts: one order id"
    )


def test_without_signing_in_the_api_answers_401(client: TestClient) -> None:
    assert client.post("/api/orders", json=GOOD).status_code == 401
    assert client.get("/api/orders").status_code == 401


def test_someone_elses_order_is_a_404(client: TestClient) -> None:
    order_id = signed_in(client, "Ada").post("/api/orders", json=GOOD).json()["order_id"]
    assert client.get(f"/api/orders/{order_id}").status_code == 200
    signed_in(client, "Bob")
    assert client.get(f"/api/orders/{order_id}").status_code == 404
    assert client.get(f"/orders/{order_id}").status_code == 404


def test_read_your_writes_before_the_read_model_has_the_order(client: TestClient) -> None:
    order_id = signed_in(client).post("/api/orders", json=GOOD).json()["order_id"]
    order = client.get(f"/api/orders/{order_id}").json()
    assert order["status"] == 100 and order["order"]["sauce"] == "Tomato"
    assert [o["order_id"] for o in client.get("/api/orders").json()] == [order_id]
    assert "Order received and being prepared" in client.get(f"/orders/{order_id}").text


def test_my_orders_come_from_the_read_model_newest_first(
    client: TestClient, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    signed_in(client)
    first = client.post("/api/orders", json=GOOD).json()["order_id"]
    second = client.post("/api/orders", json={**GOOD, "sauce": "Pesto"}).json()["order_id"]
    read_model.writer.apply(
        [*taker.placed, StatusChanged(first, Status.DELIVERED, contract.now_ms())], {}
    )
    orders = client.get("/api/orders").json()
    assert [o["order_id"] for o in orders] == [second, first]
    assert orders[1]["status"] == 400


def placed_and_moved(
    client: TestClient, read_model: ReadModel, taker: AcknowledgingTaker, *steps: tuple[Status, int]
) -> str:
    """An order placed through the API, then moved by each (status, ms after now) in the read model."""
    order_id = str(signed_in(client).post("/api/orders", json=GOOD).json()["order_id"])
    now = contract.now_ms()
    read_model.writer.apply(
        [taker.placed[0], *(StatusChanged(order_id, s, now + ms) for s, ms in steps)], {}
    )
    return order_id


def test_the_event_stream_resumes_after_last_event_id(
    client: TestClient, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    order_id = placed_and_moved(
        client,
        read_model,
        taker,
        (Status.IN_OVEN, 0),
        (Status.OUT_FOR_DELIVERY, 1),
        (Status.DELIVERED, 2),
    )
    everything = client.get(f"/api/orders/{order_id}/events").text
    ids = [int(i) for i in re.findall(r"^id: (\d+)$", everything, re.MULTILINE)]
    assert len(ids) == 4 and '"status": 400' in everything
    resumed = client.get(
        f"/api/orders/{order_id}/events", headers={"Last-Event-ID": str(ids[1])}
    ).text
    assert re.findall(r'"status": (\d+)', resumed) == ["300", "400"], (
        "only what came after the last id"
    )
    assert resumed.endswith("event: end\ndata: {}\n\n"), "a final order's stream says it has ended"


def test_each_event_carries_the_status_the_order_shows(
    client: TestClient, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    order_id = placed_and_moved(
        client, read_model, taker, (Status.OUT_FOR_DELIVERY, 0), (Status.IN_OVEN, -1000)
    )  # the oven's step arrives late
    looks = iter([False])
    client.app.state.closing = lambda: next(looks, True)  # type: ignore[attr-defined]  # one look, then stop
    stream = client.get(f"/api/orders/{order_id}/events").text
    events = [json.loads(data) for data in re.findall(r"^data: (\{.+\})$", stream, re.MULTILINE)]
    assert [e["status"] for e in events] == [100, 300, 200]
    assert {e["order_status"] for e in events} == {300}, (
        "a late step does not move the shown status back"
    )
    assert not any(e["final"] for e in events) and "event: end" not in stream


def test_someone_elses_order_has_no_event_stream(client: TestClient) -> None:
    order_id = signed_in(client, "Ada").post("/api/orders", json=GOOD).json()["order_id"]
    signed_in(client, "Bob")
    assert client.get(f"/api/orders/{order_id}/events").status_code == 404


def test_live_streams_end_when_the_server_is_closing(client: TestClient) -> None:
    order_id = signed_in(client).post("/api/orders", json=GOOD).json()["order_id"]
    client.app.state.closing = lambda: True  # type: ignore[attr-defined]  # the ASGI app is FastAPI here
    response = client.get(f"/api/orders/{order_id}/events")
    assert response.status_code == 200 and "event:" not in response.text


def test_an_open_order_page_does_not_hold_up_a_stopping_server(
    tmp_path: Path, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    settings = load_settings(state_dir=tmp_path, secret_key="test-secret")
    app = create_app(settings, read_model, taker)  # type: ignore[arg-type]  # a stand-in for the OrderTaker
    with served(app) as running, httpx.Client(base_url=running.url, timeout=10) as browser:
        browser.post("/api/session", json={"name": "Italo"})
        order_id = browser.post("/api/orders", json=GOOD).json()["order_id"]
        with browser.stream("GET", f"/api/orders/{order_id}/events") as stream:
            assert stream.status_code == 200
            running.stop()
            wait_for(
                lambda: not running.thread.is_alive(),
                timeout=5,
                what="the server to stop with a stream open",
            )


def test_the_openapi_description_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/session",
        "/api/orders",
        "/api/orders/{order_id}",
        "/api/orders/{order_id}/events",
        "/api/orders/{order_id}/records",
    } <= set(paths)


def test_the_asyncapi_document_is_served_beside_the_openapi_one(client: TestClient) -> None:
    as_yaml = client.get("/asyncapi.yaml")
    assert as_yaml.status_code == 200
    assert as_yaml.headers["content-type"] == "application/yaml"
    assert as_yaml.text == asyncapi_text(), "the web serves what the contract makes"
    as_json = client.get("/asyncapi.json")
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json() == yaml.safe_load(as_yaml.text)
    assert "/asyncapi.yaml" not in client.get("/openapi.json").json()["paths"], (
        "not part of the API"
    )


def test_an_orders_records_are_shown_to_its_customer_only(
    client: TestClient, story_teller: StoryTeller
) -> None:
    order_id = signed_in(client, "Ada").post("/api/orders", json=GOOD).json()["order_id"]
    story = client.get(f"/api/orders/{order_id}/records")
    assert story.status_code == 200, story.text
    assert story.json()["order_id"] == order_id
    first, second = story.json()["records"]
    assert (first["topic"], first["partition"], first["offset"]) == ("pizza-ordered", 3, 15)
    assert first["trace_id"] == "4bf9" * 8 and second["trace_id"] is None
    assert second["service"] == "assemble" and second["since_previous"] == "+1.203s"
    assert "value" not in first, "values hold what the API keeps from its customer"
    signed_in(client, "Bob")
    assert client.get(f"/api/orders/{order_id}/records").status_code == 404
    assert client.get("/api/orders/no-such-order/records").status_code == 404
    assert story_teller.asked == [order_id], "nothing read from Kafka for anyone else"


def test_an_orders_records_need_a_signed_in_customer(client: TestClient) -> None:
    assert client.get("/api/orders/any/records").status_code == 401


def test_records_that_cannot_be_read_are_a_503_naming_the_broker(
    client: TestClient, story_teller: StoryTeller
) -> None:
    order_id = signed_in(client).post("/api/orders", json=GOOD).json()["order_id"]
    story_teller.broker_away = True
    response = client.get(f"/api/orders/{order_id}/records")
    assert response.status_code == 503 and "127.0.0.1:9092" in response.json()["detail"]


def test_the_order_page_has_an_under_the_hood_section_loaded_by_a_script_file(
    client: TestClient, story_teller: StoryTeller
) -> None:
    order_id = signed_in(client).post("/api/orders", json=GOOD).json()["order_id"]
    page = client.get(f"/orders/{order_id}").text
    assert "Under the hood" in page
    assert f'data-records="/api/orders/{order_id}/records"' in page
    assert '<script src="/static/under_the_hood.js" defer></script>' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "no inline script"
    assert client.get("/static/under_the_hood.js").status_code == 200
    assert story_teller.asked == [], "Kafka is read only when the section is opened"


# --- the pages ---------------------------------------------------------------------------------


def sign_in_page(client: TestClient, name: str = "Italo") -> str:
    token = csrf_of(client.get("/signin").text)
    response = client.post("/signin", data={"name": name, "csrf": token})
    assert response.status_code == 200, response.text  # followed to the menu
    return str(response.text)


def test_signing_in_and_ordering_through_the_pages(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    menu_html = sign_in_page(client)
    response = client.post("/orders", data={**GOOD, "csrf": csrf_of(menu_html)})
    assert response.status_code == 200 and "your order is placed" in response.text
    assert taker.placed[0].order_id in response.text


def test_a_form_without_the_token_is_refused(client: TestClient, taker: AcknowledgingTaker) -> None:
    sign_in_page(client)
    response = client.post("/orders", data={**GOOD, "csrf": "forged"})
    assert response.status_code == 403 and taker.placed == []
    assert client.post("/signin", data={"name": "Mallory"}).status_code == 403


def test_a_bad_form_shows_the_menu_again_with_the_field_named(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    menu_html = sign_in_page(client)
    response = client.post("/orders", data={**GOOD, "sauce": "Ketchup", "csrf": csrf_of(menu_html)})
    assert response.status_code == 422 and "Ketchup" in response.text and taker.placed == []


def test_a_name_with_a_script_is_shown_escaped(client: TestClient) -> None:
    evil = "<script>alert(1)</script>"
    menu_html = sign_in_page(client, name="Eve")
    response = client.post("/orders", data={**GOOD, "name": evil[:40], "csrf": csrf_of(menu_html)})
    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;alert(1)" in response.text
    assert "&lt;script&gt;" in client.get("/orders").text


def test_an_unknown_order_has_a_clear_404_page(client: TestClient) -> None:
    sign_in_page(client)
    response = client.get("/orders/no-such-order")
    assert response.status_code == 404 and "no such order" in response.text


def test_the_broker_down_shows_a_503_page_and_keeps_the_choices(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    menu_html = sign_in_page(client)
    taker.broker_down = True
    response = client.post("/orders", data={**GOOD, "csrf": csrf_of(menu_html)})
    assert response.status_code == 503 and "Nothing was ordered" in response.text


def key_of(html: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert match, "the order form has no one-time key"
    return match.group(1)


def test_an_order_form_sent_twice_is_one_order(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    menu_html = sign_in_page(client)
    form = {**GOOD, "csrf": csrf_of(menu_html), "idempotency_key": key_of(menu_html)}
    first = client.post("/orders", data=form, follow_redirects=False)
    second = client.post("/orders", data=form, follow_redirects=False)
    assert first.headers["location"] == second.headers["location"]
    assert len(taker.placed) == 1
    assert key_of(client.get("/").text) != form["idempotency_key"], "a new form, a new order"


def test_an_unanswered_order_form_comes_back_with_its_key_to_press_again(
    client: TestClient, taker: AcknowledgingTaker
) -> None:
    menu_html = sign_in_page(client)
    taker.unanswered = True
    form = {**GOOD, "csrf": csrf_of(menu_html), "idempotency_key": key_of(menu_html)}
    response = client.post("/orders", data=form)
    assert response.status_code == 504 and "Pressing Order again is safe" in response.text
    assert key_of(response.text) == form["idempotency_key"]


def test_pages_need_a_signed_in_customer(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"


def test_an_order_placed_on_another_web_process_is_shown_once_the_read_model_has_read_past_it(
    tmp_path: Path, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    settings = load_settings(state_dir=tmp_path, secret_key="test-secret")
    here = signed_in(TestClient(create_app(settings, read_model, taker)))  # type: ignore[arg-type]  # a stand-in for the OrderTaker
    order_id = here.post("/api/orders", json=GOOD).json()["order_id"]
    there = TestClient(create_app(settings, read_model, AcknowledgingTaker()))  # type: ignore[arg-type]  # a stand-in for the OrderTaker
    there.cookies.update(here.cookies)  # the customer's browser, on another web process

    # The status service takes the order a moment later, with the offset it resumes from.
    written = Written(partition=0, offset=0)
    resume_from = {(str(contract.Topic.ORDERED), written.partition): written.offset + 1}
    status_service = threading.Timer(
        0.3, read_model.writer.apply, (list(taker.placed), resume_from)
    )
    status_service.start()
    seen = there.get(f"/api/orders/{order_id}")
    status_service.join()
    assert seen.status_code == 200, "the other web process should wait for the read model"
    assert [o["order_id"] for o in there.get("/api/orders").json()] == [order_id]


# --- cancelling an order -----------------------------------------------------------------------


def an_order_of(
    client: TestClient, read_model: ReadModel, *steps: Status, partition: int = 3
) -> str:
    """An order of a customer signed in now, placed on `partition`, that has reached `steps`."""
    customer = signed_in_customer(client)
    placed = OrderPlaced("o1", Order(customer_id=customer, **GOOD), contract.now_ms())
    statuses = [StatusChanged("o1", step, contract.now_ms()) for step in steps]
    read_model.writer.apply(
        [placed, *statuses], {}, [("pizza-ordered", partition, 0)] * (1 + len(steps))
    )
    return "o1"


def signed_in_customer(client: TestClient) -> str:
    customer_id: str = client.post("/api/session", json={"name": "Italo"}).json()["customer_id"]
    return customer_id


def test_a_cancel_is_asked_on_the_orders_partition_and_answers_202_while_undecided(
    client: TestClient, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    order_id = an_order_of(client, read_model)
    client.app.state.desk.cancel_wait = 0.0  # type: ignore[attr-defined]  # the app under test
    response = client.post(f"/api/orders/{order_id}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "undecided"
    ((event, partition),) = taker.sent
    assert isinstance(event, CancelRequested) and event.order_id == order_id
    assert partition == 3, "a cancel goes where its order lives"


@pytest.mark.parametrize(
    ("steps", "status_code", "detail"),
    [
        ((Status.CANCELLED,), 200, "cancelled"),
        ((Status.IN_OVEN,), 409, "too late: your pizza is made"),
        ((Status.IN_OVEN, Status.OUT_FOR_DELIVERY), 409, "too late: your pizza is out for"),
        ((Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED), 409, "was delivered"),
        ((Status.INVALID_ORDER,), 409, "nothing to cancel"),
        ((Status.SOLD_OUT,), 409, "nothing to cancel"),
    ],
)
def test_a_cancel_of_a_decided_order_answers_at_once_and_asks_nothing(
    client: TestClient,
    read_model: ReadModel,
    taker: AcknowledgingTaker,
    steps: tuple[Status, ...],
    status_code: int,
    detail: str,
) -> None:
    order_id = an_order_of(client, read_model, *steps)
    response = client.post(f"/api/orders/{order_id}/cancel")
    assert response.status_code == status_code, response.text
    assert detail in response.json()["detail"]
    assert taker.sent == [], "nothing to ask the kitchen: the read model shows the outcome"


def test_a_cancel_of_someone_elses_order_is_404(client: TestClient, read_model: ReadModel) -> None:
    order_id = an_order_of(client, read_model, Status.IN_OVEN)
    signed_in(client, "Someone else")
    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 404
    assert client.post("/api/orders/no-such-order/cancel").status_code == 404


def test_the_order_page_has_a_cancel_button_until_the_pizza_is_assembled(
    client: TestClient, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    order_id = an_order_of(client, read_model)
    page = client.get(f"/orders/{order_id}").text
    assert 'action="/orders/o1/cancel"' in page and "Cancel order" in page
    client.app.state.desk.cancel_wait = 0.0  # type: ignore[attr-defined]  # the app under test
    answer = client.post(
        f"/orders/{order_id}/cancel", data={"csrf": csrf_of(page)}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("?cancel=undecided")
    shown = client.get(answer.headers["location"]).text
    assert "The kitchen has your cancel and is deciding" in shown
    read_model.writer.apply([StatusChanged(order_id, Status.IN_OVEN, contract.now_ms())], {})
    assert "Cancel order" not in client.get(f"/orders/{order_id}").text


def test_the_cancel_button_needs_the_forms_anti_forgery_token(
    client: TestClient, read_model: ReadModel, taker: AcknowledgingTaker
) -> None:
    order_id = an_order_of(client, read_model, Status.IN_OVEN)
    answer = client.post(f"/orders/{order_id}/cancel", data={"csrf": "forged"})
    assert answer.status_code == 403
    assert taker.sent == []


# --- the pantry at the front door -------------------------------------------------------


def run_out_of(read_model: ReadModel, ingredient: str, left: int = 0) -> None:
    apply_to(read_model.writer, [StockLevel(ingredient, left)], {})


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
