"""`pizzashop kafka start --nodes 3`: a three-node KRaft cluster on one machine loses nothing
when one node dies.

Topics have replication factor 3 and min.insync.replicas 2, so with one node down every
write is still acknowledged by two replicas, and reads go on from the new leaders.
"""

from __future__ import annotations

import secrets
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pizzashop.config import Settings, kafka_client_config
from pizzashop.kafka.cluster import LocalKafka, local_kafka_status, start_local_kafka
from tests.integration.conftest import NODES

EVENTS = 30


def test_produce_and_consume_go_on_with_one_node_killed(
    three_nodes: tuple[LocalKafka, Settings],
) -> None:
    kafka, settings = three_nodes
    client = kafka_client_config(settings)
    topic = f"pizza-replicated-{secrets.token_hex(3)}"
    admin = AdminClient(client)
    admin.create_topics([NewTopic(topic, 3, NODES, config={"min.insync.replicas": "2"})])[
        topic
    ].result(30)

    again = start_local_kafka(settings)  # nodes=1, as `pizzashop up` asks
    assert again.bootstrap_servers == kafka.bootstrap_servers, "a plain start finds all three nodes"

    kafka.kill_node(2)
    try:
        nodes = local_kafka_status(settings).nodes
        assert [n.pid is not None for n in nodes] == [True, True, False], "node 2 was killed"

        producer = Producer({**client, "acks": "all", "enable.idempotence": True})
        for i in range(EVENTS):
            producer.produce(topic, key=f"order-{i}".encode(), value=b'{"status": 100}')
        assert producer.flush(60) == 0, "writes were not acknowledged with one node down"

        assert len(read_keys(client, topic, EVENTS)) == EVENTS, "not every event was read back"
    finally:
        kafka.start_node(2)
    assert kafka.is_running()


def read_keys(client: dict[str, object], topic: str, expected: int) -> set[bytes | None]:
    consumer = Consumer({**client, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    keys: set[bytes | None] = set()
    deadline = time.monotonic() + 60
    try:
        while len(keys) < expected and time.monotonic() < deadline:
            for message in consumer.consume(100, 0.5):
                assert message.error() is None, message.error()
                keys.add(message.key())
    finally:
        consumer.close()
    return keys
