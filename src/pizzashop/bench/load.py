"""The bench's orders and how they are placed: one producer for all of them, never one per order."""

from __future__ import annotations

import random
from typing import Protocol

from confluent_kafka import KafkaError, Message, Producer

from pizzashop import contract, menu
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Order, OrderPlaced


class Placer(Protocol):
    """How the bench's orders go in: straight to Kafka, or through the web app."""

    refused: list[str]
    # When orders really went in (ms), where that was later than `place` said: a customer
    # sends an order once one of the clients is free. Known once the placer is closed.
    sent_at: dict[str, int]

    def place(self, order_id: str, order: Order) -> tuple[str, int]:
        """Place the order; the id it has in the shop and when it was placed (ms)."""

    def serve_acknowledgements(self) -> None: ...

    def close(self, timeout: float = 30.0) -> int:
        """Wait for the last answers; how many orders never got one."""


def bench_orders(run_id: str, count: int, seed: int = 6) -> list[tuple[str, Order]]:
    """Orders across the whole menu, so assembling and baking times vary as in a real rush."""
    rng = random.Random(seed)
    return [
        (
            f"bench-{run_id}-{i:06d}",
            Order(
                customer_id=f"bench-customer-{rng.randrange(1000)}",
                name="Bench",
                sauce=rng.choice(menu.SAUCES),
                cheese=rng.choice(menu.CHEESES),
                main_topping=rng.choice(menu.MAIN_TOPPINGS),
                extra_toppings=rng.sample(
                    menu.EXTRA_TOPPINGS, rng.randrange(menu.MAX_EXTRA_TOPPINGS + 1)
                ),
            ),
        )
        for i in range(count)
    ]


def placement_schedule(count: int, rate: float | None) -> list[float]:
    """Seconds after the start at which each order is placed: all at once, or `rate` a second."""
    if rate is None:
        return [0.0] * count
    return [i / rate for i in range(count)]


class OrderPlacer:
    """Produces orders the way the web app does (idempotent, acks=all), batched by librdkafka."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.refused: list[str] = []
        self.sent_at: dict[str, int] = {}  # produced when placed
        self._producer = Producer(
            {
                **kafka_client_config(settings),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,  # as the services' producers: a rush is sent in batches
                "partitioner": contract.PARTITIONER,  # as the web app places orders
            }
        )
        # Connect and get the idempotent producer id now, not on the first order of the rush.
        self._producer.list_topics(topic, timeout=10)

    def place(self, order_id: str, order: Order) -> tuple[str, int]:
        """Hand the order to the producer; its id and the time it was placed (ms), as its
        event says."""
        event = OrderPlaced(order_id, order, contract.now_ms())
        record = contract.encode(event)
        while True:
            try:
                self._producer.produce(
                    self.topic, key=record.key, value=record.value, on_delivery=self._acknowledged
                )
                return order_id, event.timestamp
            except BufferError:
                self._producer.poll(0.05)  # the local queue is full: let acknowledgements drain

    def serve_acknowledgements(self) -> None:
        self._producer.poll(0)

    def _acknowledged(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.refused.append(f"{message.key()!r}: {error.str()}")

    def close(self, timeout: float = 30.0) -> int:
        """Wait for the last acknowledgements; how many orders never got one."""
        return int(self._producer.flush(timeout))
