"""An order's story: every record of it in every topic, read straight from Kafka.

Quick for a recent order on a busy topic, because it reads little: every record of an order
is on the same partition number of every topic (the co-partitioning rule), and the read model
knows that number and when the order was placed and last moved. So each topic's one partition
is sought by time (`offsets_for_times`) and read from a little before the order was placed to
a little after its last move. Dead letters go to the partition of their key's hash, which
need not be the order's, so the dead-letter topic is read on every partition, over the same
time only.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import PIPELINE_TOPICS, SERVICES, Status, Topic, framing
from pizzashop.contract.deadletter import DLQ_SERVICE
from pizzashop.kafka.reaching import REACH_TIMEOUT
from pizzashop.kafka.records import record_headers
from pizzashop.observe import tracing
from pizzashop.operator.display import clock
from pizzashop.readmodel import OrderView

# Who writes an order's records, as the contract has it: the front door (the web app or
# `pizzashop order`) places the order, each kitchen service writes its step and its status,
# the status service's watchdog the stuck mark, a service with state its changelog. A dead
# letter names the service that parked it in a header of its own (`DeadLetter.service`).
ORDERING = "ordering"
WRITER_OF_STEP: dict[Topic, str] = {
    Topic.ORDERED: ORDERING,
    Topic.ASSEMBLED: "assemble",
    Topic.BAKED: "bake",
    Topic.CANCEL: ORDERING,
    Topic.RESERVED: "pantry",
}
WRITER_OF_STATUS: dict[int, str] = {  # by status code: a record may carry any number
    Status.RECEIVED: ORDERING,
    Status.IN_OVEN: "assemble",
    Status.INVALID_ORDER: "assemble",
    Status.OUT_FOR_DELIVERY: "bake",
    Status.CANCELLED: "assemble",
    Status.SOLD_OUT: "assemble",
    Status.DELIVERED: "delivery",
    Status.STUCK: "status",
}


def writer_of(topic: str, status: int | None = None) -> str:
    """The part of the shop that writes records of `topic` (of `status`, on `pizza-status`);
    "" when the contract does not say (an unknown status, a topic not of the shop)."""
    if topic == Topic.STATUS:
        return "" if status is None else WRITER_OF_STATUS.get(status, "")
    if topic in WRITER_OF_STEP:
        return WRITER_OF_STEP[Topic(topic)]
    return next((name for name in SERVICES if topic == contract.state_topic(name)), "")


# Records are stamped by their producer's clock and the read model's times by others': read
# from a little before the order was placed.
BEFORE_PLACED_MS = 5_000
# Records that follow the order's last move: a changelog's tombstone, a dead letter parked late.
AFTER_LAST_MOVE_MS = 30_000
READ_TIMEOUT = 20.0  # seconds to read every partition of the window
SHOWN_VALUE_CHARACTERS = 500


class StoryUnreadable(RuntimeError):
    """The order's records could not be read: the broker did not answer, or not in time."""


@dataclass(frozen=True)
class StoryRecord:
    """One record of an order, where it is in Kafka, who wrote it and when."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms, the record's own time
    service: str  # who wrote it ("" when the contract does not say)
    value: str | None  # as text, compact JSON when it is JSON; None when it has none
    trace_id: str | None  # from the record's `traceparent` header
    since_previous_ms: int | None = None  # None for the first record

    @property
    def time(self) -> str:
        return clock(self.timestamp, with_date=True, with_ms=True)

    @property
    def since_previous(self) -> str:
        """`+1.203s`: how long after the previous record of the order this one came."""
        return "" if self.since_previous_ms is None else f"+{self.since_previous_ms / 1000:.3f}s"

    def as_dict(self, with_value: bool = True) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "time": self.time,
            "service": self.service,
            "trace_id": self.trace_id,
            "since_previous_ms": self.since_previous_ms,
            "since_previous": self.since_previous,
        }
        return {**shown, "value": self.value} if with_value else shown


@dataclass(frozen=True)
class Window:
    """Where an order's records are: a partition number (None: not known) and a time span."""

    partition: int | None
    since_ms: int
    until_ms: int | None  # None: up to the end (an order still on its way may move again)


def window_of(view: OrderView) -> Window:
    times = [t for t in (view.placed_at, view.updated_at) if t is not None]
    times += [entry.timestamp for entry in view.history]
    final = view.status.is_final
    return Window(
        view.partition,
        since_ms=max(min(times) - BEFORE_PLACED_MS, 0),
        until_ms=max(times) + AFTER_LAST_MOVE_MS if final else None,
    )


def read_story(settings: Settings, view: OrderView) -> list[StoryRecord]:
    """Every record of the order in the shop's topics, oldest first.

    StoryUnreadable, in one line, when the broker does not answer within a few seconds or the
    records cannot be read in time."""
    consumer = Consumer(_reader_config(settings))
    try:
        partition_counts = _partition_counts(consumer, settings)
        window = window_of(view)
        starts = _starts(consumer, _partitions_to_read(partition_counts, window))
        found = list(_records_of(consumer, view.order_id, starts, window.until_ms))
    except KafkaException as e:
        raise StoryUnreadable(f"reading the order's records failed: {e.args[0]}") from None
    finally:
        consumer.close()
    return with_time_between(sorted(found, key=_story_order))


def with_time_between(records: list[StoryRecord]) -> list[StoryRecord]:
    """The records, each with the time since the one before it."""
    return [
        replace(
            record, since_previous_ms=record.timestamp - records[i - 1].timestamp if i else None
        )
        for i, record in enumerate(records)
    ]


def _reader_config(settings: Settings) -> dict[str, Any]:
    return {
        **kafka_client_config(settings),
        "group.id": f"pizzashop-story-{uuid.uuid4().hex[:8]}",  # never joined or committed
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    }


def _partition_counts(consumer: Consumer, settings: Settings) -> dict[str, int]:
    """The partition count of each topic of an order's story that exists."""
    try:
        known = consumer.list_topics(timeout=REACH_TIMEOUT).topics
    except KafkaException:
        address = kafka_client_config(settings)["bootstrap.servers"]
        raise StoryUnreadable(
            f"the Kafka broker at {address} did not answer within {REACH_TIMEOUT:g}s"
        ) from None
    wanted = [*map(str, PIPELINE_TOPICS), *map(contract.state_topic, SERVICES)]
    wanted.append(str(Topic.DEAD_LETTER))
    # Only services that keep state have a changelog topic (delivery, today).
    return {
        name: len(known[name].partitions)
        for name in wanted
        if name in known and known[name].error is None
    }


def _partitions_to_read(counts: dict[str, int], window: Window) -> list[TopicPartition]:
    """The order's partition of each topic; every partition of the dead-letter topic, and of
    every topic when the order's partition is not known."""
    chosen = []
    for topic, count in counts.items():
        numbers: Iterable[int] = range(count)
        if topic != Topic.DEAD_LETTER and window.partition is not None and window.partition < count:
            numbers = [window.partition]
        chosen += [TopicPartition(topic, p, window.since_ms) for p in numbers]
    return chosen


def _starts(consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
    """Each partition's first offset written at the window's start or later; partitions with
    nothing that recent are left out."""
    if not partitions:
        return []
    found = consumer.offsets_for_times(partitions, timeout=READ_TIMEOUT)
    return [tp for tp in found if tp.error is None and tp.offset >= 0]


def _records_of(
    consumer: Consumer, order_id: str, starts: list[TopicPartition], until_ms: int | None
) -> Iterator[StoryRecord]:
    key = order_id.encode()
    for message in _read_window(consumer, starts, until_ms):
        if message.key() == key:
            yield _story_record(message)


def _read_window(
    consumer: Consumer, starts: list[TopicPartition], until_ms: int | None
) -> Iterator[Message]:
    """Every record from the starts, each partition up to its end or past `until_ms`."""
    reading = {(tp.topic, tp.partition) for tp in starts}
    consumer.assign(starts)
    deadline = time.monotonic() + READ_TIMEOUT
    while reading:
        if time.monotonic() > deadline:
            raise StoryUnreadable(f"could not read the order's records within {READ_TIMEOUT:g}s")
        for message in consumer.consume(500, 0.2):
            where = (message.topic(), message.partition())
            if where not in reading:
                continue  # a partition read far enough, whose fetched records still arrive
            if _is_end(message) or _is_past(message, until_ms):
                _stop_reading(consumer, reading, where)
            else:
                yield message


def _is_end(message: Message) -> bool:
    error = message.error()
    if error is None:
        return False
    if error.code() == KafkaError._PARTITION_EOF:
        return True
    raise KafkaException(error)


def _is_past(message: Message, until_ms: int | None) -> bool:
    return until_ms is not None and _timestamp(message) > until_ms


def _stop_reading(
    consumer: Consumer, reading: set[tuple[str, int]], where: tuple[str, int]
) -> None:
    reading.discard(where)
    consumer.pause([TopicPartition(*where)])


def _story_record(message: Message) -> StoryRecord:
    topic, value = str(message.topic()), message.value()
    headers = record_headers(message) or []
    return StoryRecord(
        topic=topic,
        partition=int(message.partition() or 0),
        offset=int(message.offset() or 0),
        timestamp=_timestamp(message),
        service=_writer(topic, value, headers),
        value=_shown(value),
        trace_id=tracing.trace_id_in(headers),
    )


def _writer(topic: str, value: bytes | None, headers: list[tuple[str, bytes | None]]) -> str:
    if topic == Topic.DEAD_LETTER:
        service = _header(headers, DLQ_SERVICE)  # who parked it: see DeadLetter
        return (service or b"").decode("utf-8", errors="replace")
    if topic == Topic.STATUS:
        return writer_of(topic, _status_in(value))
    return writer_of(topic)


def _status_in(value: bytes | None) -> int | None:
    """The status a `pizza-status` value carries, read leniently: a bad one still has a writer
    to show when its number is readable."""
    try:
        status = json.loads(framing.json_of(value or b"")).get("status")
    except (ValueError, AttributeError):
        return None
    return status if isinstance(status, int) else None


def _shown(value: bytes | None) -> str | None:
    if value is None:
        return None
    schema_id = framing.schema_id_of(value) if framing.is_framed(value) else None
    text = framing.json_of(value).decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):  # not JSON: shown as it is
        text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    if schema_id is not None:
        text = f"(schema {schema_id}) {text}"
    return text if len(text) <= SHOWN_VALUE_CHARACTERS else text[:SHOWN_VALUE_CHARACTERS] + "…"


def _header(headers: Iterable[tuple[str, bytes | None]], name: str) -> bytes | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _timestamp(message: Message) -> int:
    _, timestamp = message.timestamp()
    return int(timestamp)


# Records of one millisecond in the order of the pipeline, then of the shop's other topics.
_TOPIC_RANK = {str(topic): rank for rank, topic in enumerate(PIPELINE_TOPICS)}


def _story_order(record: StoryRecord) -> tuple[int, int, str, int, int]:
    rank = _TOPIC_RANK.get(record.topic, len(_TOPIC_RANK))
    return (record.timestamp, rank, record.topic, record.partition, record.offset)
