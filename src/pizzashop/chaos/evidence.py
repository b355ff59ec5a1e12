"""What the chaos run reads back: the topics (read committed), the read model and the pantry's
starting stock, after the run; and while it runs, the moment each order's final status was committed."""

from __future__ import annotations

import threading
import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from pizzashop import contract
from pizzashop.chaos.checks import Evidence, Position, Seen
from pizzashop.chaos.load import Placed
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import ContractError, OrderPlaced, StatusChanged, Topic
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.kafka.records import record_headers, record_position
from pizzashop.kafka.topics import PANTRY_TOPIC_NAMES, PIPELINE_TOPIC_NAMES, read_to_end
from pizzashop.menu import starting_stock
from pizzashop.readmodel.store import open_readmodel

READ_TIMEOUT = 120.0


def gather(settings: Settings, placed: Placed, poison: list[Position]) -> Evidence:
    records = [
        Seen(*record_position(m), m.key(), m.value())
        for topic in (*PIPELINE_TOPIC_NAMES, *PANTRY_TOPIC_NAMES)
        for m in read_to_end(settings, topic, timeout=READ_TIMEOUT)
    ]
    letters = [
        DeadLetter.parked(m.key(), m.value(), record_headers(m) or [], record_position(m)[1:])
        for m in read_to_end(settings, str(Topic.DEAD_LETTER), timeout=READ_TIMEOUT)
    ]
    read_model = open_readmodel(settings.readmodel_url)
    try:
        views = {
            order_id: read_model.orders.get_order(order_id) for order_id in _orders_in(records)
        }
    finally:
        read_model.close()
    return Evidence(
        accepted=set(placed.accepted_at),
        cancels_sent=set(placed.cancels_sent),
        poison=list(poison),
        records=records,
        dead_letters=letters,
        views=views,
        start=starting_stock(settings),
        restocks_sent=dict(placed.restocks_sent),
    )


def _orders_in(records: list[Seen]) -> set[str]:
    orders = set()
    for record in records:
        if record.topic == Topic.ORDERED:
            try:
                event = contract.decode(record.topic, record.key, record.value)
            except ContractError:
                continue  # poison; the checks say whether it was ours
            if isinstance(event, OrderPlaced):
                orders.add(event.order_id)
    return orders


class FinalStatuses:
    """When each order's final status was committed to `pizza-status` (time.monotonic()), as a
    read_committed consumer of the run sees it: for the run's measure of recovery."""

    def __init__(self, settings: Settings) -> None:
        self.final_at: dict[str, float] = {}
        self._stopping = threading.Event()
        self._consumer = Consumer(
            {
                **kafka_client_config(settings),
                "group.id": f"pizzashop-chaos-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,
            }
        )
        topic = str(Topic.STATUS)
        partitions = self._consumer.list_topics(topic, timeout=30).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        self._thread = threading.Thread(target=self._run, name="chaos-final-statuses", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            for message in self._consumer.consume(500, 0.2):
                if message.error() is not None:
                    continue  # a node away, a partition moving: the consumer carries on itself
                try:
                    event = contract.decode(Topic.STATUS, message.key(), message.value())
                except ContractError:
                    continue  # poison
                if isinstance(event, StatusChanged) and event.status.is_final:
                    self.final_at.setdefault(event.order_id, time.monotonic())
