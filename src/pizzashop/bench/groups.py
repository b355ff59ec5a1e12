"""What the bench asks the broker about consumer groups: are they ready, and how far behind."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, MemberDescription  # type: ignore[attr-defined]  # public here, but confluent_kafka.admin has no __all__
from confluent_kafka.cimpl import NewTopic

from pizzashop.config import Settings, kafka_client_config
from pizzashop.kafka.lag import lag_of_group

log = logging.getLogger("pizzashop.bench")

ADMIN_TIMEOUT = 10.0
READY_CHECK_INTERVAL = 0.2


def _admin(settings: Settings) -> AdminClient:
    return AdminClient(kafka_client_config(settings))


def assigned_partitions(settings: Settings, groups: Iterable[str]) -> dict[str, int]:
    """How many partitions the members of each group hold right now (0 for a group not formed)."""
    return {
        group: sum(len(m.assignment.topic_partitions) for m in members)
        for group, members in _members(settings, groups).items()
    }


def active_members(settings: Settings, groups: Iterable[str]) -> dict[str, int]:
    return {group: len(members) for group, members in _members(settings, groups).items()}


def _members(settings: Settings, groups: Iterable[str]) -> dict[str, list[MemberDescription]]:
    """The members of each group right now (none for a group the broker cannot describe)."""
    admin = _admin(settings)  # kept alive until its futures are done
    futures = admin.describe_consumer_groups(list(groups), request_timeout=ADMIN_TIMEOUT)
    members: dict[str, list[MemberDescription]] = {}
    for group, future in futures.items():
        try:
            members[group] = list(future.result().members)
        except KafkaException:
            members[group] = []
    return members


def wait_until_assigned(settings: Settings, expected: Mapping[str, int], timeout: float) -> None:
    """Until every group holds all its partitions, so the first orders do not wait on a rebalance."""
    deadline = time.monotonic() + timeout
    while True:
        held = assigned_partitions(settings, expected)
        if all(held[group] >= count for group, count in expected.items()):
            return
        if time.monotonic() > deadline:
            missing = {g: f"{held[g]}/{n}" for g, n in expected.items() if held[g] < n}
            raise TimeoutError(f"consumer groups not assigned within {timeout:g}s: {missing}")
        time.sleep(READY_CHECK_INTERVAL)  # a rebalance has no event to wait on from outside


def group_lag(settings: Settings, group: str, topics: Iterable[str]) -> int:
    """Records in `topics` the group has not committed yet, all partitions together."""
    return sum(lag_of_group(settings, group, topics, timeout=ADMIN_TIMEOUT).values())


def delete_groups(settings: Settings, groups: list[str]) -> None:
    admin = _admin(settings)  # kept alive until its futures are done
    for future in admin.delete_consumer_groups(groups, request_timeout=ADMIN_TIMEOUT).values():
        try:
            future.result()
        except KafkaException as e:  # already gone, or still closing: it expires on its own
            log.debug("Consumer group not deleted: %s", e)


def delete_topics(settings: Settings, topics: list[str]) -> None:
    admin = _admin(settings)  # kept alive until its futures are done
    for future in admin.delete_topics(topics, operation_timeout=ADMIN_TIMEOUT).values():
        try:
            future.result()
        except KafkaException as e:
            log.warning("Bench topic not deleted: %s", e)


def create_bench_topics(settings: Settings, names: list[str], partitions: int) -> None:
    admin = _admin(settings)  # kept alive until its futures are done
    futures = admin.create_topics(
        [NewTopic(name, partitions, settings.replication_factor) for name in names],
        request_timeout=ADMIN_TIMEOUT,
    )
    for future in futures.values():
        future.result()
    deadline = time.monotonic() + ADMIN_TIMEOUT
    while not all(name in admin.list_topics(timeout=ADMIN_TIMEOUT).topics for name in names):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {names} did not appear within {ADMIN_TIMEOUT:g}s")
        time.sleep(READY_CHECK_INTERVAL)  # metadata reaches every broker shortly after creation


def partition_counts(settings: Settings, topics: Iterable[str]) -> dict[str, int]:
    admin = _admin(settings)  # kept alive until its futures are done
    metadata = admin.list_topics(timeout=ADMIN_TIMEOUT).topics
    return {topic: len(metadata[topic].partitions) for topic in topics}
