"""The web app with the real order taker: the order lands on pizza-ordered, or a clear 503."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

from confluent_kafka import Consumer
from fastapi.testclient import TestClient

from pizzashop.commands.ordering import OrderTaker, Written
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Order, OrderPlaced, Topic
from pizzashop.kafka.topics import read_to_end
from pizzashop.readmodel.store import open_readmodel
from pizzashop.web.app import create_app
from tests.ports import free_port

ORDER = {
    "name": "Italo",
    "sauce": "Tomato",
    "cheese": "Mozzarella",
    "main_topping": "Pepperoni",
    "extra_toppings": ["Mushroom"],
}


def web_process(settings: Settings, timeout: float = 5.0, wait: float | None = None) -> TestClient:
    """One web app (as one process of several would be), with the real order taker."""
    taker = OrderTaker(settings, timeout, wait=wait)
    return TestClient(create_app(settings, open_readmodel(settings.readmodel_url), taker))


def signed_in(client: TestClient) -> TestClient:
    assert client.post("/api/session", json={"name": "Italo"}).status_code == 201
    return client


def client_for(settings: Settings, timeout: float = 5.0) -> TestClient:
    return signed_in(web_process(settings, timeout))


def test_an_order_from_the_api_lands_on_pizza_ordered_in_the_seeds_shape(
    shop_settings: Settings,
) -> None:
    client = client_for(shop_settings)
    order_id = client.post("/api/orders", json=ORDER).json()["order_id"]

    consumer = Consumer(
        {
            **kafka_client_config(shop_settings),
            "group.id": f"web-{order_id}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(["pizza-ordered"])
    value = None
    deadline = time.monotonic() + 30
    while value is None and time.monotonic() < deadline:
        for message in consumer.consume(500, 0.5):
            if message.error() is None and message.key() == order_id.encode():
                value = json.loads(message.value() or b"")
    consumer.close()
    assert value is not None, "the order never reached pizza-ordered"
    assert value["status"] == 100 and isinstance(value["timestamp"], int)
    assert {k: value["order"][k] for k in ORDER} == ORDER
    assert set(value["order"]) == {*ORDER, "customer_id"}


def test_an_unreachable_broker_gets_a_504_saying_a_retry_with_the_same_key_is_safe(
    shop_settings: Settings,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    nowhere = shop_settings.replace(bootstrap_servers=address)
    response = client_for(nowhere, timeout=1.0).post(
        "/api/orders", json=ORDER, headers={"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 504, "unanswered is not refused: it may be in the log"
    detail = response.json()["detail"]
    assert address in detail and "same Idempotency-Key is safe" in detail, detail


def test_orders_placed_at_once_are_each_acknowledged_and_all_in_the_log(
    shop_settings: Settings,
) -> None:
    taker = OrderTaker(shop_settings)
    order = Order(customer_id="c-at-once", **ORDER)
    order_ids = [f"at-once-{secrets.token_hex(4)}-{n}" for n in range(50)]

    async def place_all() -> list[tuple[OrderPlaced, Written]]:
        return await asyncio.gather(*(taker.place_async(order, i) for i in order_ids))

    placed = asyncio.run(place_all())
    taker.close()

    assert [p.order_id for p, _ in placed] == order_ids, "each caller got its own order back"
    assert len({w for _, w in placed}) == len(order_ids), "each written at a place of its own"
    found = {
        key.decode()
        for record in read_to_end(shop_settings, str(Topic.ORDERED))
        if (key := record.key()) is not None and key.decode() in order_ids
    }
    assert found == set(order_ids), f"{len(order_ids) - len(found)} acknowledged orders missing"
