"""The shop's topics: the five of the wire contract, the dead-letter topic, and service state;
how long they keep their history."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec, ResourceType  # type: ignore[attr-defined]  # public here, but confluent_kafka.admin has no __all__
from confluent_kafka.cimpl import NewTopic

from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import ONE_PARTITION_TOPICS, PIPELINE_TOPICS, Topic
from pizzashop.kafka.reaching import check_broker

if TYPE_CHECKING:
    from confluent_kafka import Message

log = logging.getLogger("pizzashop.kafka.topics")

CREATE_TIMEOUT = 30.0
PIPELINE_TOPIC_NAMES: tuple[str, ...] = tuple(str(t) for t in PIPELINE_TOPICS)
PANTRY_TOPIC_NAMES: tuple[str, ...] = tuple(str(t) for t in ONE_PARTITION_TOPICS)
# Every topic of the shop's own: the pipeline's, the dead-letter topic and the pantry's.
SHOP_TOPIC_NAMES: tuple[str, ...] = (
    *PIPELINE_TOPIC_NAMES,
    str(Topic.DEAD_LETTER),
    *PANTRY_TOPIC_NAMES,
)


# The shop's own topics hold the truth: every order and every step of it. They keep it all
# unless the settings say less; service state (compacted changelogs) keeps its own policy.
KEPT_FOR_EVER = "-1"
RETENTION_SETTINGS = ("retention.ms", "retention.bytes")
MS_PER_HOUR = 3_600_000
# What a topic that keeps less than its whole history costs, said when the shop starts on it.
WHAT_SHORT_HISTORY_LOSES: dict[str, str] = {
    Topic.ORDERED: "a read model rebuilt from the log would miss older orders",
    Topic.ASSEMBLED: "replaying the kitchen from the start would miss older orders' steps",
    Topic.BAKED: "replaying the kitchen from the start would miss older orders' steps",
    Topic.STATUS: "a read model rebuilt from the log would miss older orders' progress",
    Topic.CANCEL: "replaying the kitchen from the start would miss older orders' cancels",
    Topic.DEAD_LETTER: "older parked events could no longer be listed or replayed",
    Topic.RESERVED: "a read model rebuilt from the log would not know what older orders ran out of",
    Topic.PANTRY: "replaying the pantry from the start would miss older asks",
}
ANY_TOPIC_LOSES = "a replay from the start would miss older records"


class TopicsNotCoPartitioned(ValueError):
    """The topics an order passes through have different partition counts."""


class TopicsMissing(RuntimeError):
    """Some of the shop's topics do not exist (yet)."""


def create_topics(
    settings: Settings,
    bootstrap_servers: str | None = None,
    partitions: int | None = None,
    replication_factor: int | None = None,
) -> list[str]:
    """Create the contract's topics and the dead-letter topic; existing ones are left as they are.
    The pantry's asks and its stock have one partition each; the stock is compacted.

    TopicsNotCoPartitioned if the pipeline's topics, new or old, differ in partition count;
    Unreachable, within seconds, if the broker does not answer.
    """
    check_broker(settings, bootstrap_servers)
    config = history_config(settings)
    names = [*PIPELINE_TOPIC_NAMES, str(Topic.DEAD_LETTER)]
    counts = _create(settings, bootstrap_servers, names, partitions, replication_factor, config)
    co_partitioned_count({name: counts[name] for name in PIPELINE_TOPIC_NAMES})
    _create(settings, bootstrap_servers, [str(Topic.PANTRY)], 1, replication_factor, config)
    compacted = {**config, "cleanup.policy": "compact"}  # the last level of each ingredient
    _create(settings, bootstrap_servers, [str(Topic.STOCK)], 1, replication_factor, compacted)
    warn_of_short_history(settings, [*names, str(Topic.PANTRY)], bootstrap_servers)
    return list(SHOP_TOPIC_NAMES)


def history_config(settings: Settings) -> dict[str, str]:
    """How much the shop's own topics keep: everything, or `retention_hours` when it is set."""
    if settings.retention_hours is None:
        return dict.fromkeys(RETENTION_SETTINGS, KEPT_FOR_EVER)
    kept_ms = str(round(settings.retention_hours * MS_PER_HOUR))
    return {"retention.ms": kept_ms, "retention.bytes": KEPT_FOR_EVER}


def warn_of_short_history(
    settings: Settings,
    names: Sequence[str],
    bootstrap_servers: str | None = None,
    timeout: float = CREATE_TIMEOUT,
) -> list[str]:
    """Say once, as a warning, which of `names` keep less history than the settings ask, and
    what that costs; the lines said. Topics made before (or by others) keep their own settings."""
    try:
        found = retention_of(settings, names, bootstrap_servers, timeout)
    except KafkaException as e:
        log.warning("Could not read the topics' retention, so it is not checked: %s", e)
        return []
    lines = short_history_warnings(history_config(settings), found)
    for line in lines:
        log.warning("%s", line)
    return lines


def retention_of(
    settings: Settings, names: Sequence[str], bootstrap_servers: str | None, timeout: float
) -> dict[str, dict[str, str]]:
    """Each topic's retention settings, as the broker describes them."""
    admin = AdminClient(kafka_client_config(settings, bootstrap_servers))
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    return {
        resource.name: {
            key: str(entry.value)
            for key, entry in future.result(timeout).items()
            if key in RETENTION_SETTINGS
        }
        for resource, future in futures.items()
    }


def short_history_warnings(
    wanted: Mapping[str, str], found: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """A line for each topic in `found` that keeps less than `wanted`: how much it keeps, what a
    rebuild or a replay would miss, and the command that makes it keep what is wanted."""
    lines = []
    wanted_text = ",".join(f"{key}={value}" for key, value in wanted.items())
    for name, config in sorted(found.items()):
        kept = _shortfalls(wanted, config)
        if kept:
            loses = WHAT_SHORT_HISTORY_LOSES.get(name, ANY_TOPIC_LOSES)
            lines.append(
                f"{name} keeps {' and '.join(kept)}: {loses}. To keep what the shop asks: "
                f"kafka-configs.sh --alter --entity-type topics --entity-name {name} "
                f"--add-config {wanted_text}"
            )
    return lines


def _shortfalls(wanted: Mapping[str, str], config: Mapping[str, str]) -> list[str]:
    """What a topic keeps, where it keeps less than wanted (a negative number: no limit)."""
    kept = []
    for key in RETENTION_SETTINGS:
        limit, has = int(wanted.get(key, KEPT_FOR_EVER)), int(config.get(key, KEPT_FOR_EVER))
        if has >= 0 and (limit < 0 or has < limit):
            amount = _span(has) if key == "retention.ms" else f"{has} bytes a partition"
            kept.append(f"{amount} ({key}={has})")
    return kept


def _span(ms: int) -> str:
    """A duration in ms as people say it: 7 days, 36 hours, 90 seconds."""
    for unit, size in (("day", 24 * MS_PER_HOUR), ("hour", MS_PER_HOUR), ("minute", 60_000)):
        if ms >= size and ms % size == 0:
            count = ms // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{ms / 1000:g} seconds"


def create_state_topic(
    settings: Settings, name: str, partitions: int, timeout: float = CREATE_TIMEOUT
) -> None:
    """A compacted topic for a service's state, with as many partitions as the pipeline's topics."""
    compacted = {"cleanup.policy": "compact"}
    _create(settings, None, [name], partitions, None, config=compacted, timeout=timeout)


def shared_partition_count(
    settings: Settings,
    names: Sequence[str],
    bootstrap_servers: str | None = None,
    timeout: float = CREATE_TIMEOUT,
) -> int:
    """The partition count that all of `names` share.

    An order keeps one partition number in every topic it passes through (the co-partitioning
    rule of Kafka Streams), so topics with unequal counts would split an order's events
    between service instances: TopicsNotCoPartitioned. TopicsMissing if some do not exist.
    """
    admin = AdminClient(kafka_client_config(settings, bootstrap_servers))
    known = admin.list_topics(timeout=timeout).topics
    missing = [name for name in names if name not in known or known[name].error is not None]
    if missing:
        raise TopicsMissing(
            f"topic(s) {', '.join(missing)} do not exist: "
            "create them with `pizzashop topics create`"
        )
    counts = {name: len(known[name].partitions) for name in names}
    return co_partitioned_count(counts)


def co_partitioned_count(counts: Mapping[str, int]) -> int:
    """The one partition count of these topics, or TopicsNotCoPartitioned saying which differ."""
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{name} has {count}" for name, count in counts.items())
        raise TopicsNotCoPartitioned(
            f"the topics an order passes through must have the same number of partitions, "
            f"but {listed}: recreate them with equal counts (or add partitions to match)"
        )
    return next(iter(counts.values()))


def _create(
    settings: Settings,
    bootstrap_servers: str | None,
    names: list[str],
    partitions: int | None,
    replication_factor: int | None,
    config: dict[str, str],
    timeout: float = CREATE_TIMEOUT,
) -> dict[str, int]:
    """Create the topics that do not exist; the partition count of each, once all are seen."""
    admin = AdminClient(kafka_client_config(settings, bootstrap_servers))
    count = partitions or settings.partitions
    replicas = replication_factor or settings.replication_factor
    if replicas >= 3:
        config = {**config, "min.insync.replicas": "2"}
    futures = admin.create_topics(
        [NewTopic(name, count, replicas, config=config) for name in names], request_timeout=timeout
    )
    for future in futures.values():
        try:
            future.result()
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return _wait_until_visible(admin, names, timeout)


def _wait_until_visible(admin: AdminClient, names: list[str], timeout: float) -> dict[str, int]:
    """Each topic's partition count, read from metadata that has them all (a node of a
    cluster may learn of a new topic a moment after the one that created it)."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        if all(name in topics and not topics[name].error for name in names):
            return {name: len(topics[name].partitions) for name in names}
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {names} did not appear within {timeout:g}s")
        time.sleep(0.1)  # metadata propagates to the broker we ask shortly after creation


def read_to_end(
    settings: Settings,
    topic: str,
    partitions: set[int] | None = None,
    read_committed: bool = True,
    timeout: float = CREATE_TIMEOUT,
    since_ms: int | None = None,
) -> Iterator[Message]:
    """Every record of a topic's partitions (all, by default), from the start (or the first
    record written at `since_ms` or later) to the current end.

    Reads by partition, outside any consumer group, so it waits on no group coordinator.
    """
    consumer = Consumer(
        {
            **kafka_client_config(settings),
            "group.id": f"pizzashop-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        }
    )
    try:
        starts = _starts(consumer, topic, partitions, since_ms, timeout)
        consumer.assign(starts)
        yield from _until_each_end(consumer, topic, {tp.partition for tp in starts}, timeout)
    finally:
        consumer.close()


def _starts(
    consumer: Consumer,
    topic: str,
    partitions: set[int] | None,
    since_ms: int | None,
    timeout: float,
) -> list[TopicPartition]:
    """Where to start reading each partition that has something to read."""
    if partitions is None:
        partitions = set(consumer.list_topics(topic, timeout=timeout).topics[topic].partitions)
    unread = sorted(p for p in partitions if _has_records(consumer, topic, p, timeout))
    if since_ms is None:
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in unread]
    if not unread:
        return []
    found = consumer.offsets_for_times(
        [TopicPartition(topic, p, since_ms) for p in unread], timeout=timeout
    )
    return [tp for tp in found if tp.offset >= 0]  # -1: nothing that recent


def _until_each_end(
    consumer: Consumer, topic: str, unread: set[int], timeout: float
) -> Iterator[Message]:
    """The assigned partitions' records, until each has reported its end."""
    deadline = time.monotonic() + timeout
    while unread:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"could not read {topic} {sorted(unread)} to the end in {timeout:g}s"
            )
        for message in consumer.consume(500, 0.5):
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                unread.discard(message.partition())
            elif error is not None:
                raise KafkaException(error)
            else:
                yield message


# What a partition's leader answers for a moment after a broker (re)starts or leadership moves.
LEADER_NOT_READY = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}


def _has_records(consumer: Consumer, topic: str, partition: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            return bool(high > low)
        except KafkaException as e:
            if e.args[0].code() not in LEADER_NOT_READY or time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # the leader gives no event when it is ready; ask again shortly


ENDS_TIMEOUT = 3.0  # seconds for one request of the partitions' ends


def wait_for_open_transactions(
    settings: Settings, topic: str, partitions: set[int], timeout: float = CREATE_TIMEOUT
) -> bool:
    """Until every transaction open now on these partitions has ended (committed or aborted),
    so that a read committed to the end sees what they wrote; False if some is still open at
    the deadline.

    A partition's new owner restores its state right after the old owner committed. The
    broker confirms a commit before its markers reach every partition: the offsets it
    committed can already be read while the state it wrote in the same transaction cannot,
    and a restore that reads to the end then would miss that state.
    """
    if not partitions:
        return True
    admin = AdminClient(kafka_client_config(settings))
    asked = [TopicPartition(topic, p) for p in sorted(partitions)]
    deadline = time.monotonic() + timeout
    written: dict[int, int] | None = None
    while True:
        try:
            if written is None:
                written = _latest_offsets(admin, asked, IsolationLevel.READ_UNCOMMITTED)
            readable = _latest_offsets(admin, asked, IsolationLevel.READ_COMMITTED)
            if all(readable[p] >= end for p, end in written.items()):
                return True
        except KafkaException as e:  # a partition between leaders (a node restarting)
            log.debug("Asking again for the ends of %s: %s", topic, e)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)  # markers follow a commit within milliseconds


def _latest_offsets(
    admin: AdminClient, asked: list[TopicPartition], isolation: IsolationLevel
) -> dict[int, int]:
    futures = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in asked},  # type: ignore[no-untyped-call]  # unannotated in confluent_kafka
        isolation_level=isolation,
        request_timeout=ENDS_TIMEOUT,
    )
    return {tp.partition: future.result().offset for tp, future in futures.items()}
