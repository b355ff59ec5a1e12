"""The shop's topics: the four of the wire contract, the dead-letter topic, and service state."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import PIPELINE_TOPICS, Topic

CREATE_TIMEOUT = 30.0


def create_topics(settings: Settings, bootstrap_servers: str | None = None,
                  partitions: int | None = None, replication_factor: int | None = None) -> list[str]:
    """Create the contract's topics and the dead-letter topic; existing ones are left as they are."""
    names = [str(t) for t in (*PIPELINE_TOPICS, Topic.DEAD_LETTER)]
    _create(settings, bootstrap_servers, names, partitions, replication_factor, config={})
    return names


def create_state_topic(settings: Settings, name: str, bootstrap_servers: str | None = None) -> None:
    """A compacted topic for a service's state, partitioned like the topics it consumes."""
    _create(settings, bootstrap_servers, [name], None, None, config={"cleanup.policy": "compact"})


def _create(settings: Settings, bootstrap_servers: str | None, names: list[str],
            partitions: int | None, replication_factor: int | None, config: dict[str, str]) -> None:
    admin = AdminClient(kafka_client_config(settings, bootstrap_servers))
    count = partitions or settings.partitions
    replicas = replication_factor or settings.replication_factor
    if replicas >= 3:
        config = {**config, "min.insync.replicas": "2"}
    futures = admin.create_topics(
        [NewTopic(name, count, replicas, config=config) for name in names],
        request_timeout=CREATE_TIMEOUT,
    )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    _wait_until_visible(admin, names)


def _wait_until_visible(admin: AdminClient, names: list[str]) -> None:
    deadline = time.monotonic() + CREATE_TIMEOUT
    while True:
        topics = admin.list_topics(timeout=CREATE_TIMEOUT).topics
        if all(name in topics and not topics[name].error for name in names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {names} did not appear within {CREATE_TIMEOUT:g}s")
        time.sleep(0.1)  # metadata propagates to the broker we ask shortly after creation
