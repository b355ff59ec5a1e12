"""The embedded Apache Kafka: a real broker answering real clients."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pizzashop.config import kafka_client_config
from pizzashop.kafka.cluster import LocalKafka, local_kafka_status, start_local_kafka
from pizzashop.kafka.records import record_position
from pizzashop.kafka.topics import create_topics
from tests.conftest import Broker, broker_settings


def test_keyed_json_events_go_through_the_broker(kafka_broker: Broker) -> None:
    print(f"Apache Kafka {kafka_broker.version} at {kafka_broker.bootstrap_servers}")
    topic = f"test-roundtrip-{secrets.token_hex(4)}"
    settings: dict[str, Any] = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    admin = AdminClient(settings)
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)

    producer = Producer(settings)
    sent = {f"order-{i}": {"status": 100 + i} for i in range(20)}
    for key, value in sent.items():
        producer.produce(topic, key=key.encode(), value=json.dumps(value).encode())
    assert producer.flush(30) == 0

    consumer = Consumer({**settings, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received: dict[str, dict[str, object]] = {}
    partition_of: dict[str, set[int]] = {}
    deadline = time.monotonic() + 30
    while len(received) < len(sent) and time.monotonic() < deadline:
        for message in consumer.consume(100, 0.5):
            assert message.error() is None, message.error()
            key = (message.key() or b"").decode()
            received[key] = json.loads(message.value() or b"")
            _, partition, _ = record_position(message)
            partition_of.setdefault(key, set()).add(partition)
    consumer.close()
    assert received == sent
    assert all(len(p) == 1 for p in partition_of.values()), "one key, one partition"


def test_the_contract_topics_exist_with_six_partitions(kafka_broker: Broker) -> None:
    topics = (
        AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
        .list_topics(timeout=10)
        .topics
    )
    for name in ("pizza-ordered", "pizza-assembled", "pizza-baked", "pizza-status", "pizza-dlq"):
        assert name in topics, f"{name} was not created"
        assert len(topics[name].partitions) == 6


def test_a_restarted_broker_keeps_topics_and_committed_offsets(tmp_path: Path) -> None:
    settings = broker_settings(tmp_path / "state")
    kafka = start_local_kafka(settings)
    try:
        create_topics(settings, kafka.bootstrap_servers, partitions=1)
        client = kafka_client_config(settings, kafka.bootstrap_servers)
        producer = Producer(client)
        producer.produce("pizza-ordered", key=b"k", value=b"{}")
        assert producer.flush(30) == 0
        consumer = Consumer({**client, "group.id": "restart-test", "auto.offset.reset": "earliest"})
        consumer.subscribe(["pizza-ordered"])
        message = None
        deadline = time.monotonic() + 30
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
        assert message is not None and message.error() is None
        consumer.commit(message=message, asynchronous=False)
        consumer.close()

        status = local_kafka_status(settings)
        assert status.running and status.nodes[0].pid is not None
        assert status.bootstrap_servers == kafka.bootstrap_servers

        kafka.stop()
        assert not kafka.is_running()
        assert not local_kafka_status(settings).running, "the broker was stopped"
        again = start_local_kafka(settings)
        assert isinstance(again, LocalKafka) and again.is_running()
        assert start_local_kafka(settings).nodes[0].pid() == again.nodes[0].pid(), (
            "a second start reuses the running broker"
        )

        consumer = Consumer({**client, "group.id": "restart-test"})
        (committed,) = consumer.committed([TopicPartition("pizza-ordered", 0)], timeout=30)
        consumer.close()
        assert committed.offset == 1, "the committed offset survived the restart"
    finally:
        kafka.stop()
