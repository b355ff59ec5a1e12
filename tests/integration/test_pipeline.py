"""The whole pizza pipeline on the real broker: ordered, assembled, baked, delivered, read."""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter

from confluent_kafka import Consumer

from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Order, Status, Topic
from tests.shop_harness import (
    RunningShop, place, produce_raw, wait_for, wait_until_delivered,
)

PROGRESS = [Status.RECEIVED, Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED]


def an_order(name: str = "Italo", extras: tuple[str, ...] = ("Mushroom",)) -> Order:
    return Order(customer_id="c-" + secrets.token_hex(4), name=name, sauce="Tomato",
                 cheese="Mozzarella", main_topping="Pepperoni", extra_toppings=list(extras))


def status_events(settings: Settings, order_ids: set[str], expected: int, timeout: float = 30) -> Counter:
    """How many times each (order, status) was committed to pizza-status."""
    consumer = Consumer({
        **kafka_client_config(settings), "group.id": "test-" + secrets.token_hex(4),
        "auto.offset.reset": "earliest", "isolation.level": "read_committed",
    })
    consumer.subscribe([str(Topic.STATUS)])
    seen: Counter = Counter()
    deadline = time.monotonic() + timeout
    try:
        while sum(seen.values()) < expected and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if message.error() is None and message.key().decode() in order_ids:
                    seen[(message.key().decode(), json.loads(message.value())["status"])] += 1
        # Anything produced twice would be here by now: read on briefly past the expected count.
        for message in consumer.consume(500, 1.0):
            if message.error() is None and message.key().decode() in order_ids:
                seen[(message.key().decode(), json.loads(message.value())["status"])] += 1
    finally:
        consumer.close()
    return seen


def test_orders_reach_delivered_with_the_full_history(shop: RunningShop) -> None:
    started = int(time.time() * 1000)
    order_ids = [place(shop.settings, an_order(name=f"Customer {i}")) for i in range(10)]

    views = wait_until_delivered(shop.read_model(), order_ids, timeout=60)

    finished = int(time.time() * 1000)
    for view in views:
        assert [entry.status for entry in view.history] == PROGRESS, view
        times = [entry.timestamp for entry in view.history]
        assert times == sorted(times), f"history of {view.order_id} goes back in time: {times}"
        assert started - 1000 <= times[0] and times[-1] <= finished + 1000, times
        assert view.order is not None and view.order.name.startswith("Customer")


def test_an_order_in_exactly_the_seeds_json_is_delivered(shop: RunningShop) -> None:
    order_id = secrets.token_hex(3)[:5]  # a short id like the seed's '3c91b'
    seed_value = (
        '{"status": 100, "timestamp": 1676235639159, "order": {"extra_toppings": ["Mushroom"], '
        '"customer_id": "d94a6c43d9f487c1bef659f05c002213", "name": "Italo", "sauce": "Tomato", '
        '"cheese": "Mozzarella", "main_topping": "Pepperoni"}}'
    )
    produce_raw(shop.settings, str(Topic.ORDERED), order_id.encode(), seed_value.encode())

    (view,) = wait_until_delivered(shop.read_model(), [order_id], timeout=60)

    assert [entry.status for entry in view.history] == PROGRESS
    assert view.order is not None and view.order.extra_toppings == ["Mushroom"]
    assert view.placed_at == 1676235639159


def test_an_order_off_the_menu_gets_an_error_status_not_a_pizza(shop: RunningShop) -> None:
    bad = an_order().model_copy(update={"sauce": "Ketchup"})
    order_id = place(shop.settings, bad)

    view = wait_for(
        lambda: (v := shop.read_model().get_order(order_id)) and v.status is Status.INVALID_ORDER and v,
        timeout=60, what="the invalid order to get status 500",
    )
    assert Status.IN_OVEN not in [entry.status for entry in view.history]


def test_two_instances_of_each_service_share_the_work_and_each_order_completes_once(
    shop: RunningShop,
) -> None:
    first = {r.service.name: r for r in shop.runners}
    second = {name: shop.start(name) for name in ("assemble", "bake", "delivery")}
    for name, runner in second.items():
        wait_for(lambda: runner.consumer.assignment() and first[name].consumer.assignment(),
                 timeout=60, what=f"both {name} instances to own partitions")
        mine = {tp.partition for tp in runner.consumer.assignment()}
        theirs = {tp.partition for tp in first[name].consumer.assignment()}
        assert mine and theirs and not (mine & theirs), f"{name}: {mine} and {theirs} overlap"

    order_ids = [place(shop.settings, an_order(name=f"Twin {i}")) for i in range(30)]
    wait_until_delivered(shop.read_model(), order_ids, timeout=90)

    counts = status_events(shop.settings, set(order_ids), expected=3 * len(order_ids))
    for order_id in order_ids:
        for status in (200, 300, 400):
            assert counts[(order_id, status)] == 1, (
                f"order {order_id} status {status} produced {counts[(order_id, status)]} times")
