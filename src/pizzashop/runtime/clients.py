"""A service's Kafka clients: configured in one place (group, ids, partitioner, guarantee),
made by the factories a loop is given (`Clients`), and the few calls the runtime makes of
them (`ConsumerLike`, `ProducerLike`, `TopicAdmin`), which an in-memory stand-in can answer."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config
from pizzashop.kafka.topics import create_state_topic, shared_partition_count
from pizzashop.observe.health import STATS_INTERVAL_MS

ErrorCallback = Callable[[KafkaError], None]
OnDelivery = Callable[[KafkaError | None, Message], None]
Rebalanced = Callable[[Any, list[TopicPartition]], None]  # (the consumer, the partitions)


class ConsumerLike(Protocol):
    """The consumer calls the runtime makes: a confluent_kafka Consumer, or a stand-in."""

    def subscribe(
        self, topics: list[str], on_assign: Rebalanced, on_revoke: Rebalanced, on_lost: Rebalanced
    ) -> None: ...
    def consume(self, num_messages: int, timeout: float) -> list[Message]: ...
    def assignment(self) -> list[TopicPartition]: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def incremental_assign(self, partitions: list[TopicPartition]) -> None: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def committed(
        self, partitions: list[TopicPartition], timeout: float
    ) -> list[TopicPartition]: ...
    def seek(self, partition: TopicPartition) -> None: ...
    def pause(self, partitions: list[TopicPartition]) -> None: ...
    def resume(self, partitions: list[TopicPartition]) -> None: ...
    @overload
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[True] = ...
    ) -> None: ...
    @overload
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]: ...
    def consumer_group_metadata(self) -> Any: ...
    def close(self) -> None: ...


class ProducerLike(Protocol):
    """The producer calls the runtime makes: a confluent_kafka Producer, or a stand-in."""

    def init_transactions(self, timeout: float) -> None: ...
    def list_topics(self, topic: str, timeout: float) -> object: ...
    def begin_transaction(self) -> None: ...
    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: object, timeout: float
    ) -> None: ...
    def commit_transaction(self, timeout: float) -> None: ...
    def abort_transaction(self, timeout: float) -> None: ...
    def produce(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        headers: list[tuple[str, str | bytes | None]] | None,
        on_delivery: OnDelivery | None,
    ) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...


class TopicAdmin(Protocol):
    """The admin calls a kitchen service makes before it starts: its topics' one partition
    count, and its state topic made."""

    def partition_count(self, topics: Sequence[str], timeout: float) -> int: ...
    def create_state_topic(self, name: str, partitions: int, timeout: float) -> None: ...


@dataclass(frozen=True)
class KafkaTopicAdmin:
    settings: Settings

    def partition_count(self, topics: Sequence[str], timeout: float) -> int:
        return shared_partition_count(self.settings, topics, timeout=timeout)

    def create_state_topic(self, name: str, partitions: int, timeout: float) -> None:
        create_state_topic(self.settings, name, partitions, timeout)


ConsumerFactory = Callable[[dict[str, Any]], ConsumerLike]
ProducerFactory = Callable[[dict[str, Any]], ProducerLike]


@dataclass(frozen=True)
class Clients:
    """How a loop makes its Kafka clients: confluent_kafka's, or an in-memory stand-in."""

    consumer: ConsumerFactory = Consumer
    producer: ProducerFactory = Producer
    admin: Callable[[Settings], TopicAdmin] = KafkaTopicAdmin


KAFKA = Clients()


def consumer_config(
    settings: Settings,
    service: str,
    on_error: ErrorCallback | None = None,
    on_stats: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """How every service (and the bench's reference chain) reads: its group, its guarantee."""
    config: dict[str, Any] = {
        **kafka_client_config(settings),
        "group.id": contract.group_id(service),
        "client.id": contract.group_id(service),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed" if reads_committed(settings) else "read_uncommitted",
        "fetch.wait.max.ms": 10,
        # What librdkafka fetches ahead of the loop (64 MB by default: a whole rush in each
        # process's memory). 2 MB is some 4000 events of at most half a KB: several of the
        # batches a turn takes (500, 2000 for status), while one fetch brings up to as much.
        "queued.max.messages.kbytes": 2048,
        **_group_protocol(settings),
    }
    if on_error is not None:
        config["error_cb"] = on_error
    if on_stats is not None:  # the group's state and the lag, for readiness and metrics
        config["stats_cb"] = on_stats
        config["statistics.interval.ms"] = STATS_INTERVAL_MS
    return config


def _group_protocol(settings: Settings) -> dict[str, Any]:
    """Orders of one id land on the same partition number in every topic; the range assignor
    gives those partitions to the same instance (delivery relies on it). Under the consumer
    protocol (KIP-848) the broker assigns, and holds the session (see kafka/node.py)."""
    if settings.group_protocol == "consumer":
        return {"group.protocol": "consumer", "group.remote.assignor": "range"}
    return {
        "partition.assignment.strategy": "range",
        # A killed instance's partitions move to the others after this long.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
    }


def assigns_incrementally(settings: Settings) -> bool:
    """Whether a rebalance hands a member only the partitions it gains (the consumer protocol)
    rather than its whole new assignment (the classic protocol's range assignor)."""
    return settings.group_protocol == "consumer"


def producer_config(
    settings: Settings, service: str, transactional: bool, on_error: ErrorCallback | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        **kafka_client_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "client.id": contract.group_id(service),
        # Only for records with no input to follow (dead letters, stuck marks of old orders).
        "partitioner": contract.PARTITIONER,
    }
    if on_error is not None:
        config["error_cb"] = on_error
    if transactional:
        config.update(_transactional(service))
    return config


def _transactional(service: str) -> dict[str, Any]:
    return {
        # Unique per instance: zombies are fenced by the consumer group generation (KIP-447).
        "transactional.id": f"{contract.group_id(service)}-{socket.gethostname()}-{os.getpid()}-"
        f"{uuid.uuid4().hex[:8]}",
        # A killed instance's open transaction holds back read_committed readers until the
        # broker aborts it: keep that wait short.
        "transaction.timeout.ms": 10_000,
        # The broker answers "concurrent transactions" to a new transaction while it still
        # writes the last one's markers (a few ms); retrying after the default 100 ms put a
        # tenth of a second on every hop of every order. (Backoff still grows to 1 s.)
        "retry.backoff.ms": 1,
        # Committing a transaction sends what is waiting at once, whatever the linger, so a
        # long one costs no latency; it only stops the records of one transaction from
        # trickling out in many small requests while the loop is still making them (a
        # quarter of the broker's work in a rush).
        "linger.ms": 100,
    }


def reads_committed(settings: Settings) -> bool:
    return settings.processing_guarantee == "exactly_once"
