"""A service's Kafka clients, configured in one place: group, ids, partitioner, guarantee."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config
from pizzashop.observe.health import STATS_INTERVAL_MS

ErrorCallback = Callable[[KafkaError], None]


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
