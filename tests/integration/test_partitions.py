"""One order, one partition number, whoever produced it.

Orders come from the plain Apache Kafka Java producer (murmur2, as every JVM client) and from
a librdkafka producer with its default partitioner (CRC32), interleaved, while two delivery
and two status instances share the work: every order is delivered, every status once. And a
shop whose topics differ in partition count refuses to start, in one clear line.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pizzashop.config import Settings, as_environment, kafka_client_config
from pizzashop.contract import Topic
from pizzashop.kafka.cluster import start_local_kafka
from pizzashop.kafka.jars import kafka_jars
from pizzashop.kafka.topics import create_topics, read_to_end
from tests.conftest import Broker, broker_settings
from tests.shop_harness import (
    RunningShop,
    assert_each_delivered_exactly_once,
    wait_for,
    wait_until_delivered,
)

JAVA_PRODUCER = Path(__file__).parent / "jvm" / "OrderProducer.java"
ORDERS_EACH = 40
SEED_ORDER = {
    "status": 100,
    "timestamp": 1676235639159,
    "order": {
        "extra_toppings": ["Mushroom"],
        "customer_id": "d94a6c43d9f487c1bef659f05c002213",
        "name": "Italo",
        "sauce": "Tomato",
        "cheese": "Mozzarella",
        "main_topping": "Pepperoni",
    },
}


def seed_orders(prefix: str) -> list[tuple[str, str]]:
    return [(f"{prefix}-{i:02d}", json.dumps(SEED_ORDER)) for i in range(ORDERS_EACH)]


class JavaProducer:
    """OrderProducer.java on the kafka-clients jar the shop fetches, run from its source."""

    def __init__(self, settings: Settings, bootstrap_servers: str) -> None:
        self.process = subprocess.Popen(
            [
                "java",
                "-cp",
                f"{kafka_jars(settings)}/*",
                str(JAVA_PRODUCER),
                bootstrap_servers,
                str(Topic.ORDERED),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.partitions: dict[str, int] = {}

    def produce(self, key: str, value: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{key}\t{value}\n")
        self.process.stdin.flush()
        written_key, partition = self.process.stdout.readline().rstrip("\n").split("\t")
        assert written_key == key, f"the Java producer answered for {written_key}, not {key}"
        self.partitions[key] = int(partition)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(60) == 0, self.process.stderr.read() if self.process.stderr else ""


def librdkafka_default_partition(key: str, partitions: int) -> int:
    """Where librdkafka's default partitioner (consistent_random: CRC32) puts a key."""
    return zlib.crc32(key.encode()) % partitions


def test_orders_from_a_jvm_producer_and_a_librdkafka_producer_are_all_delivered_once(
    kafka_broker: Broker, shop_settings: Settings
) -> None:
    shop = RunningShop(shop_settings)
    for name in ("assemble", "pantry", "bake", "delivery", "delivery", "status", "status"):
        shop.start(name)
    try:
        for runner in shop.runners:
            wait_for(lambda: runner.assigned, timeout=60, what=f"{runner.name} to own partitions")
        jvm_orders, librdkafka_orders = seed_orders("jvm"), seed_orders("rdk")
        java = JavaProducer(kafka_broker.settings, kafka_broker.bootstrap_servers)
        default_producer = Producer(kafka_client_config(shop_settings))  # librdkafka's defaults
        try:
            for (jvm_key, jvm_value), (rdk_key, rdk_value) in zip(
                jvm_orders, librdkafka_orders, strict=True
            ):
                java.produce(jvm_key, jvm_value)
                default_producer.produce(str(Topic.ORDERED), key=rdk_key, value=rdk_value)
                default_producer.poll(0)
        finally:
            java.close()
        assert default_producer.flush(30) == 0, (
            "the librdkafka producer's orders were not acknowledged"
        )

        moved = [
            k
            for k, p in java.partitions.items()
            if p != librdkafka_default_partition(k, shop_settings.partitions)
        ]
        assert moved, (
            "every JVM order landed where librdkafka would have put it: the test proves nothing"
        )
        order_ids = [key for key, _ in jvm_orders + librdkafka_orders]
        wait_until_delivered(shop.read_model(), order_ids, timeout=120)
        assert_each_delivered_exactly_once(shop_settings, shop.read_model(), order_ids)
    finally:
        shop.stop_all()


# --- topics with unequal partition counts --------------------------------------------------------


@pytest.fixture(scope="module")
def lopsided_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A broker of its own whose pizza-baked has 3 partitions and every other topic 6."""
    settings = broker_settings(tmp_path_factory.mktemp("lopsided"))
    kafka = start_local_kafka(settings)
    try:
        settings = settings.replace(bootstrap_servers=kafka.bootstrap_servers, time_scale=0.001)
        admin = AdminClient(kafka_client_config(settings))
        for future in admin.create_topics([NewTopic(str(Topic.BAKED), 3, 1)]).values():
            future.result()
        yield settings
    finally:
        kafka.stop()


def pizzashop(
    settings: Settings, *arguments: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pizzashop", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **as_environment(settings)},
    )


def test_topics_with_unequal_partition_counts_are_refused_in_one_clear_line(
    lopsided_cluster: Settings, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="pizza-baked has 3"):
        create_topics(lopsided_cluster)  # what `pizzashop up` does first: it stops there

    settings = lopsided_cluster.replace(state_dir=tmp_path)
    for command in (["topics", "create"], ["service", "delivery"]):
        result = pizzashop(settings, *command)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert result.returncode == 1, f"{command}: {result.returncode}\n{result.stderr[-2000:]}"
        assert (
            len(errors) == 1
            and "pizza-baked has 3" in errors[0]
            and "pizza-ordered has 6" in errors[0]
        ), f"{command}: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_every_event_of_an_order_follows_the_partition_its_first_producer_chose(
    shop: RunningShop,
) -> None:
    producer = Producer(kafka_client_config(shop.settings))
    chosen = {f"pinned-{secrets.token_hex(4)}-{p}": p for p in range(shop.settings.partitions)}
    for order_id, partition in chosen.items():  # wherever a hash of the key would put it
        producer.produce(
            str(Topic.ORDERED), key=order_id, value=json.dumps(SEED_ORDER), partition=partition
        )
    assert producer.flush(30) == 0

    wait_until_delivered(shop.read_model(), list(chosen), timeout=60)

    for topic in (Topic.ASSEMBLED, Topic.BAKED, Topic.STATUS):
        landed = {
            key.decode(): m.partition()
            for m in read_to_end(shop.settings, str(topic))
            if (key := m.key()) and key.decode() in chosen
        }
        assert landed == chosen, f"{topic}: {landed} instead of {chosen}"
