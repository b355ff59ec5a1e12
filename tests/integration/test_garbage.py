"""Garbage in, nothing kept: well-formed kitchen events for orders never placed all end in the
dead-letter topic with their reason, and every service's state is back to its size after."""

from __future__ import annotations

import secrets

from confluent_kafka import Producer

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import PizzaAssembled, PizzaBaked, Topic
from pizzashop.contract.deadletter import DLQ_ERROR, DLQ_SERVICE
from pizzashop.kafka.records import record_headers
from pizzashop.kafka.topics import read_to_end
from pizzashop.runtime import KitchenWork
from pizzashop.services import SERVICE_NAMES
from tests.shop_harness import RunningShop, wait_for

EACH = 1000  # baked pizzas, and assembled ones, of orders never placed


def produce_all(settings: Settings, events: list[contract.Event]) -> None:
    producer = Producer({**kafka_client_config(settings), "partitioner": contract.PARTITIONER})
    for event in events:
        record = contract.encode(event)
        producer.produce(str(record.topic), key=record.key, value=record.value or None)
        producer.poll(0)
    assert producer.flush(30) == 0


def parked(settings: Settings, since_ms: int, prefix: str) -> dict[tuple[str, str], str]:
    """(order id, service that parked it) -> reason, for the dead letters of this test."""
    found = {}
    for message in read_to_end(settings, str(Topic.DEAD_LETTER), since_ms=since_ms):
        key = (message.key() or b"").decode()
        if key.startswith(prefix):
            headers = {k: (v or b"").decode() for k, v in record_headers(message) or []}
            found[(key, headers[DLQ_SERVICE])] = headers[DLQ_ERROR]
    return found


def test_kitchen_events_for_orders_never_placed_are_parked_and_leave_no_state(
    shop_settings: Settings,
) -> None:
    settings = shop_settings.replace(stuck_after=3.0, remember_orders_for=4.0)
    shop = RunningShop(settings)
    loops = {name: shop.start(name) for name in SERVICE_NAMES}
    works = {name: loop.work for name, loop in loops.items()}
    kitchen = {name: work for name, work in works.items() if isinstance(work, KitchenWork)}
    try:
        wait_for(lambda: all(loop.readiness().ready for loop in loops.values()), 60, "a ready shop")
        before = {name: loop.orders_in_state() for name, loop in kitchen.items()}
        prefix, since = f"never-placed-{secrets.token_hex(3)}-", contract.now_ms()
        baked = [f"{prefix}b{i}" for i in range(EACH)]
        assembled = [f"{prefix}a{i}" for i in range(EACH)]
        produce_all(settings, [PizzaBaked(i) for i in baked])
        produce_all(settings, [PizzaAssembled(i, baking_time=1) for i in assembled])
        # Each chain ends in the dead-letter topic: delivery parks every baked pizza whose
        # order never came (the fed ones, and those bake made of the assembled ones); the
        # status service parks bake's status 300 of each order it never saw placed.
        expected = {(i, "delivery") for i in baked + assembled} | {(i, "status") for i in assembled}
        letters = wait_for(
            lambda: (found := parked(settings, since, prefix)).keys() >= expected and found,
            timeout=90,
            what="every event of the orders never placed to be parked",
        )
        assert all("unknown order" in reason for reason in letters.values()), set(letters.values())
        wait_for(
            lambda: all(kitchen[n].orders_in_state() <= before[n] for n in kitchen),
            timeout=30,
            what=f"every kitchen service's state to be back to its size {before}",
        )
        read_model = shop.read_model()
        assert not [
            e
            for e in read_model.watchdog.unplaced_events(contract.now_ms())
            if e.order_id.startswith(prefix)
        ]
    finally:
        shop.stop_all()
