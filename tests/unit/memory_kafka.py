"""Kafka in memory, for the few client calls the runtime makes: a loop made with
`MemoryKafka().clients()` runs without a broker, and a test reads what it produced and
committed, holds back acknowledgements, hands partitions over or makes a call fail."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from pizzashop.runtime.clients import Clients, OnDelivery, Rebalanced

Source = tuple[str, int]
TIMESTAMP = 1_700_000_000_000


def no_retry(what: str, action: Callable[[], Any], where: str | None = None) -> Any:
    """A retry that tries once: for a step that works, or must fail as it is."""
    return action()


def transport_failure() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))


class MemoryKafka:
    """Topics of `partitions` partitions each, and one consumer group."""

    def __init__(self, partitions: int = 1) -> None:
        self.partitions = partitions
        self.logs: dict[Source, list[Message]] = defaultdict(list)
        self.committed: dict[Source, int] = {}  # the group's offsets
        self.commits: list[
            dict[Source, int]
        ] = []  # each commit, by the consumer or in a transaction
        self.calls: list[str] = []  # the transactional producer's calls, in order
        self.consumers: list[MemoryConsumer] = []
        self.producers: list[MemoryProducer] = []
        self.holding_acknowledgements = False
        # A partition assigned without an offset is never read, as when librdkafka's own ask
        # for the committed offset is answered "not coordinator" as a whole (its issue 5586).
        self.losing_its_own_offset_fetch = False
        self._failing: dict[str, list[Exception]] = defaultdict(list)

    def clients(self) -> Clients:
        return Clients(consumer=self.consumer, producer=self.producer, admin=lambda _: self)

    def consumer(self, config: dict[str, Any]) -> MemoryConsumer:
        self.consumers.append(MemoryConsumer(self))
        return self.consumers[-1]

    def producer(self, config: dict[str, Any]) -> MemoryProducer:
        self.producers.append(MemoryProducer(self, "transactional.id" in config))
        return self.producers[-1]

    # --- what a test does --------------------------------------------------------------------

    def append(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int = 0
    ) -> None:
        """A record in the log, as another producer would write it."""
        log = self.logs[(topic, partition)]
        log.append(
            Message(
                topic=topic,
                partition=partition,
                offset=len(log),
                key=key,
                value=value,
                timestamp=(1, TIMESTAMP),
            )
        )

    def values(self, topic: str) -> list[bytes | None]:
        """What `topic` holds, over its partitions."""
        return [m.value() for (t, _), log in sorted(self.logs.items()) if t == topic for m in log]

    def fail_next(self, call: str, error: Exception) -> None:
        """The next call of that name (a client method) raises `error`."""
        self._failing[call].append(error)

    def commit(self, offsets: dict[Source, int]) -> None:
        self.committed.update(offsets)
        self.commits.append(dict(offsets))

    def called(self, call: str) -> None:
        if self._failing[call]:
            raise self._failing[call].pop(0)

    # --- the admin calls -----------------------------------------------------------------------

    def partition_count(self, topics: Sequence[str], timeout: float) -> int:
        self.called("partition_count")
        return self.partitions

    def create_state_topic(self, name: str, partitions: int, timeout: float) -> None:
        self.called("create_state_topic")


class MemoryConsumer:
    """One member that gets every partition of what it subscribes to at its first consume."""

    def __init__(self, kafka: MemoryKafka) -> None:
        self.kafka = kafka
        self.positions: dict[Source, int] = {}
        self.paused: set[Source] = set()
        self.closed = False
        self._on_assign: Rebalanced | None = None
        self._on_revoke: Rebalanced | None = None
        self._on_lost: Rebalanced | None = None
        self._losing = False
        self._coming: list[TopicPartition] = []
        self._going: list[TopicPartition] = []

    def subscribe(
        self, topics: list[str], on_assign: Rebalanced, on_revoke: Rebalanced, on_lost: Rebalanced
    ) -> None:
        self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost
        partitions = range(self.kafka.partitions)
        self._coming = [
            TopicPartition(topic, p, OFFSET_INVALID) for topic in topics for p in partitions
        ]

    def hand_over(self, topic: str, partition: int) -> None:
        """At the next consume, the partition goes to another member (a rebalance)."""
        self._going.append(TopicPartition(topic, partition))

    def lose_everything(self) -> None:
        """At the next consume, every partition is found taken by another member, as when this
        one was paused past its session."""
        self._going = self.assignment()
        self._losing = True

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        """What has come, up to `num_messages`; never waits (nothing comes while it would)."""
        self._rebalance()
        taken: list[Message] = []
        for source, at in list(self.positions.items()):
            if source in self.paused or len(taken) >= num_messages:
                continue
            more = self.kafka.logs[source][at : at + num_messages - len(taken)]
            self.positions[source] = at + len(more)
            taken.extend(more)
        return taken

    def _rebalance(self) -> None:
        if self._going and self._on_revoke is not None and self._on_lost is not None:
            going, self._going = self._going, []
            (self._on_lost if self._losing else self._on_revoke)(self, going)
            self._losing = False
            for tp in going:
                self.positions.pop((tp.topic, tp.partition), None)
        if self._coming and self._on_assign is not None:
            coming, self._coming = self._coming, []
            self._on_assign(self, coming)
            if not all((tp.topic, tp.partition) in self.positions for tp in coming):
                self.incremental_assign(coming)  # what the client does if the callback did not

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(topic, partition) for topic, partition in self.positions]

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = {}
        self.incremental_assign(partitions)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            source = (tp.topic, tp.partition)
            if tp.offset == OFFSET_INVALID:  # the client asks for the committed offset itself
                if self.kafka.losing_its_own_offset_fetch:
                    continue
                self.positions[source] = self.kafka.committed.get(source, 0)
            else:
                self.positions[source] = max(tp.offset, 0)  # OFFSET_BEGINNING is -2

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        self.kafka.called("position")
        return [
            TopicPartition(tp.topic, tp.partition, self.positions.get((tp.topic, tp.partition), -1))
            for tp in partitions
        ]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.kafka.called("committed")
        return [
            TopicPartition(
                tp.topic,
                tp.partition,
                self.kafka.committed.get((tp.topic, tp.partition), OFFSET_INVALID),
            )
            for tp in partitions
        ]

    def seek(self, partition: TopicPartition) -> None:
        offset = 0 if partition.offset == OFFSET_BEGINNING else partition.offset
        self.positions[(partition.topic, partition.partition)] = offset

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    @overload
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[True] = ...
    ) -> None: ...
    @overload
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: Literal[False]
    ) -> list[TopicPartition]: ...
    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: bool = True
    ) -> list[TopicPartition] | None:
        self.kafka.called("commit")
        self.kafka.commit({(tp.topic, tp.partition): tp.offset for tp in offsets})
        return None if asynchronous else offsets

    def consumer_group_metadata(self) -> Any:
        return "the group's metadata"

    def close(self) -> None:
        self.closed = True


class MemoryProducer:
    """Records go to the log at once, or in a transaction at its commit; acknowledgements
    come with `poll` or `flush` (unless the test holds them back)."""

    def __init__(self, kafka: MemoryKafka, transactional: bool) -> None:
        self.kafka, self.transactional = kafka, transactional
        self._open: list[Message] = []  # records of the open transaction
        self._offsets: dict[Source, int] = {}  # offsets of the open transaction
        self._reports: list[tuple[OnDelivery, Message]] = []

    def init_transactions(self, timeout: float) -> None:
        self.kafka.called("init_transactions")

    def list_topics(self, topic: str, timeout: float) -> object:
        return None

    def begin_transaction(self) -> None:
        self._note("begin_transaction", "begin")

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: object, timeout: float
    ) -> None:
        self._note("send_offsets_to_transaction", "offsets")
        self._offsets.update({(tp.topic, tp.partition): tp.offset for tp in positions})

    def commit_transaction(self, timeout: float) -> None:
        self._note("commit_transaction", "commit")
        for message in self._open:
            self._write(message)
        if self._offsets:
            self.kafka.commit(self._offsets)
        self._open, self._offsets = [], {}

    def abort_transaction(self, timeout: float) -> None:
        self._note("abort_transaction", "abort")
        self._open, self._offsets = [], {}

    def produce(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        headers: list[tuple[str, str | bytes | None]] | None,
        on_delivery: OnDelivery | None,
    ) -> None:
        self._note("produce", f"produce {topic}")
        source = (topic, max(partition, 0))
        message = Message(
            topic=topic,
            partition=source[1],
            offset=len(self.kafka.logs[source]) + len(self._open),
            key=key,
            value=value,
            headers=headers,
            timestamp=(1, TIMESTAMP),
        )
        if self.transactional:
            self._open.append(message)
        else:
            self._write(message)
        if on_delivery is not None:
            self._reports.append((on_delivery, message))

    def _write(self, message: Message) -> None:
        topic, partition = message.topic(), message.partition()
        assert topic is not None and partition is not None
        self.kafka.logs[(topic, partition)].append(message)

    def poll(self, timeout: float) -> int:
        if self.kafka.holding_acknowledgements:
            return 0
        reports, self._reports = self._reports, []
        for on_delivery, message in reports:
            on_delivery(None, message)
        return len(reports)

    def flush(self, timeout: float) -> int:
        self.poll(timeout)
        return len(self._reports)

    def _note(self, method: str, call: str | None = None) -> None:
        """Note the call in a transaction; raise what the test said this method raises next."""
        if self.transactional:
            self.kafka.calls.append(call or method)
        self.kafka.called(method)
