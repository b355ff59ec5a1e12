"""A three-node KRaft cluster on one machine: losing one node loses nothing.

Topics have replication factor 3 and min.insync.replicas 2, so with one node down every
write is still acknowledged by two replicas, and reads go on from the new leaders.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from pizzashop.config import Settings, kafka_client_config
from pizzashop.kafka_local import LocalKafka, start_local_kafka
from pizzashop.services import SERVICE_NAMES
from pizzashop.topics import create_topics
from tests.conftest import broker_settings
from tests.integration.test_faults import Burst, finish_and_check
from tests.shop_harness import ShopProcesses, wait_for

NODES = 3

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, Settings]]:
    settings = broker_settings(tmp_path_factory.mktemp("cluster-state"), nodes=NODES,
                               replication_factor=NODES)
    kafka = start_local_kafka(settings, nodes=NODES)
    try:
        settings = settings.replace(bootstrap_servers=kafka.bootstrap_servers)
        create_topics(settings)
        yield kafka, settings
    finally:
        kafka.stop()


def test_a_replicated_topic_survives_a_killed_node(cluster: tuple[LocalKafka, Settings]) -> None:
    kafka, settings = cluster
    topic = f"pizza-replicated-{secrets.token_hex(3)}"
    admin = AdminClient(kafka_client_config(settings))
    admin.create_topics([NewTopic(topic, 3, NODES, config={"min.insync.replicas": "2"})])[topic].result(30)

    kafka.kill_node(2)
    try:
        producer = Producer({**kafka_client_config(settings), "acks": "all", "enable.idempotence": True})
        for i in range(30):
            producer.produce(topic, key=f"k{i}".encode(), value=b'{"status": 100}')
        assert producer.flush(60) == 0, "writes were not acknowledged with one node down"
        consumer = Consumer({**kafka_client_config(settings), "group.id": topic,
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        received: set[bytes] = set()
        deadline = time.monotonic() + 60
        while len(received) < 30 and time.monotonic() < deadline:
            received |= {m.key() for m in consumer.consume(100, 0.5) if m.error() is None}
        consumer.close()
        assert len(received) == 30, f"read back {len(received)} of 30 with one node down"
    finally:
        kafka.start_node(2)


def test_the_shop_loses_nothing_when_a_node_dies_mid_burst(
    cluster: tuple[LocalKafka, Settings], tmp_path: Path,
) -> None:
    kafka, settings = cluster
    shop = ShopProcesses(settings.replace(state_dir=tmp_path / "shop", time_scale=0.03), tmp_path)
    for name in SERVICE_NAMES:
        shop.start(name)
    try:
        with Burst(shop.settings) as burst:
            wait_for(burst.half_placed, timeout=60, what="half the burst to be placed")
            kafka.kill_node(1)
        finish_and_check(shop, burst.order_ids)
    finally:
        shop.stop_all()
        kafka.start_node(1)
