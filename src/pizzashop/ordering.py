"""The command side: an order is placed by producing `pizza-ordered`, and only that.

`place` answers once the broker has acknowledged the event (acks=all, idempotent), so an
order is either in the log or refused with an error; never accepted and then lost.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Order, OrderPlaced

ACKNOWLEDGE_TIMEOUT = 5.0


class OrderNotAccepted(RuntimeError):
    """The broker did not take the order (unreachable, or no acknowledgement in time)."""


class OrderTaker:
    def __init__(self, settings: Settings, timeout: float = ACKNOWLEDGE_TIMEOUT) -> None:
        self.timeout = timeout
        self._producer = Producer({
            **kafka_client_config(settings),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
            # Give up on an order as soon as the customer stops waiting for an answer.
            "message.timeout.ms": int(timeout * 1000),
        })

    def place(self, order: Order, order_id: str | None = None) -> OrderPlaced:
        event = OrderPlaced(order_id or contract.new_order_id(), order, contract.now_ms())
        record = contract.encode(event)
        outcome: list[KafkaError | None] = []

        def acknowledged(error: KafkaError | None, _message: Message) -> None:
            outcome.append(error)

        self._producer.produce(record.topic, key=record.key, value=record.value, on_delivery=acknowledged)
        self._producer.flush(self.timeout)
        if not outcome:
            raise OrderNotAccepted(f"the broker did not acknowledge the order within {self.timeout:g}s")
        if outcome[0] is not None:
            raise OrderNotAccepted(f"the broker refused the order: {outcome[0].str()}")
        return event

    def close(self) -> None:
        self._producer.flush(self.timeout)
