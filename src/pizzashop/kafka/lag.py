"""How far behind each service is, and how many records wait in the dead-letter topic: read
from the broker alone.

Lag is counted from the consumer groups' committed offsets, so it covers every instance of a
service and needs nothing from the services' processes. Every call has a short timeout: a
broker that is away is a KafkaException after a few seconds, never a hang.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]  # public here, but confluent_kafka.admin has no __all__

from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import SERVICES, Topic, group_id

BROKER_TIMEOUT = 3.0  # seconds for each request to the broker
# (topic, partition) -> records not yet committed by a group.
PartitionLag = dict[tuple[str, int], int]
# (topic, partition) -> (the first offset still kept, the next offset to be written).
OffsetBounds = dict[tuple[str, int], tuple[int, int]]


def admin_client(settings: Settings) -> AdminClient:
    """One admin client to pass to the functions below, so repeated readings share a connection."""
    return AdminClient(kafka_client_config(settings))


def group_lag(
    settings: Settings, admin: AdminClient | None = None, timeout: float = BROKER_TIMEOUT
) -> dict[str, PartitionLag]:
    """Each service's records not yet committed by its consumer group, by input partition.

    Counted up to what a read_committed consumer can read (an open transaction's records are
    not lag yet). A partition the group never committed counts from its first record kept.
    KafkaException when the broker does not answer within `timeout`.
    """
    admin = admin or admin_client(settings)
    topics = {str(topic) for consumed in SERVICES.values() for topic in consumed}
    bounds = offset_bounds(admin, topics, timeout)
    return {
        service: _lag_of_group(
            admin,
            group_id(service),
            {tp: b for tp, b in bounds.items() if tp[0] in {str(t) for t in consumed}},
            timeout,
        )
        for service, consumed in SERVICES.items()
    }


def lag_of_group(
    settings: Settings,
    group: str,
    topics: Iterable[str],
    admin: AdminClient | None = None,
    timeout: float = BROKER_TIMEOUT,
) -> PartitionLag:
    """One consumer group's records not yet committed in `topics`, by partition (any group:
    the bench's reference chain has its own)."""
    admin = admin or admin_client(settings)
    return _lag_of_group(admin, group, offset_bounds(admin, topics, timeout), timeout)


def end_offsets(
    settings: Settings, topics: Iterable[str], timeout: float = BROKER_TIMEOUT
) -> dict[tuple[str, int], int]:
    """The next offset a read_committed consumer would reach in every partition of `topics`."""
    bounds = offset_bounds(admin_client(settings), topics, timeout)
    return {tp: high for tp, (_first, high) in bounds.items()}


def dead_letter_count(
    settings: Settings, admin: AdminClient | None = None, timeout: float = BROKER_TIMEOUT
) -> int:
    """Offsets taken in the dead-letter topic, all partitions: the records parked there, plus a
    marker for each transaction that parked some (`pizzashop dlq list` reads the exact list)."""
    admin = admin or admin_client(settings)
    bounds = offset_bounds(admin, [str(Topic.DEAD_LETTER)], timeout)
    return sum(high - low for low, high in bounds.values())


def offset_bounds(admin: AdminClient, topics: Iterable[str], timeout: float) -> OffsetBounds:
    """The first and the next offset of every partition of `topics` (a missing topic has none)."""
    metadata = admin.list_topics(timeout=timeout).topics
    partitions = [
        TopicPartition(topic, partition)
        for topic in sorted(topics)
        if topic in metadata and metadata[topic].error is None
        for partition in metadata[topic].partitions
    ]
    if not partitions:
        return {}
    earliest, latest = OffsetSpec.earliest(), OffsetSpec.latest()  # type: ignore[no-untyped-call]  # unannotated in confluent_kafka
    firsts = _offsets(admin, partitions, earliest, timeout)
    nexts = _offsets(admin, partitions, latest, timeout)
    return {tp: (firsts[tp], nexts[tp]) for tp in nexts}


def _offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout: float
) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets(
        {tp: spec for tp in partitions},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=timeout,
    )
    return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}


def _lag_of_group(
    admin: AdminClient,
    group: str,
    bounds: Mapping[tuple[str, int], tuple[int, int]],
    timeout: float,
) -> PartitionLag:
    if not bounds:
        return {}
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in bounds])]
    future = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group]
    committed = {(tp.topic, tp.partition): tp.offset for tp in future.result().topic_partitions}
    # No commit yet is a negative offset: then everything still kept is to be read.
    return {tp: high - max(committed.get(tp, first), first) for tp, (first, high) in bounds.items()}
