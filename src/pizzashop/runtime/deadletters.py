"""The dead-letter topic, in one place: parking an event there, reading what was parked, and
replaying an event once it can be handled.

Every record in `pizza-dlq` carries the original key and value, and in its headers the
source topic, partition and offset, the error and the service that parked it: one
`contract.deadletter.DeadLetter` writes them and reads them back.
"""

from __future__ import annotations

import logging
import uuid

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Topic
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.kafka.reaching import check_broker
from pizzashop.kafka.records import record_headers, record_position
from pizzashop.kafka.topics import read_to_end
from pizzashop.runtime.kitchen import Ticket
from pizzashop.runtime.producing import OutgoingRecord

log = logging.getLogger("pizzashop.runtime")

READ_TIMEOUT = 30.0


def dead_letter_of(ticket: Ticket, reason: str, service: str) -> DeadLetter:
    """A consumed record as it is parked: where it came from, as it came, and why."""
    return DeadLetter(
        ticket.topic,
        ticket.partition,
        ticket.offset,
        ticket.raw_key,
        ticket.raw_value,
        reason,
        service,
    )


def dead_letter_record(
    letter: DeadLetter, trace_headers: list[tuple[str, str]] | None = None
) -> OutgoingRecord:
    """The record that parks `letter` (its trace's header too, while tracing)."""
    log.warning(
        "Dead-lettered %s[%d]@%d: %s",
        letter.source_topic,
        letter.source_partition,
        letter.source_offset,
        letter.error,
    )
    headers = [*letter.headers(), *(trace_headers or [])]
    return OutgoingRecord(str(Topic.DEAD_LETTER), letter.key, letter.value, headers=headers)


def read_dead_letters(settings: Settings, limit: int | None = None) -> list[DeadLetter]:
    """Everything in the dead-letter topic (the first `limit`, if given), by partition and offset.

    Unreachable, within seconds, when the broker does not answer."""
    check_broker(settings)
    letters: list[DeadLetter] = []
    for message in read_to_end(settings, str(Topic.DEAD_LETTER), timeout=READ_TIMEOUT):
        letters.append(_parked(message))
        if limit is not None and len(letters) >= limit:
            break
    return sorted(letters, key=lambda letter: letter.parked_at or (-1, -1))


def replay(settings: Settings, position: str) -> DeadLetter:
    """Produce a parked event again to the topic it came from, as it was."""
    letter = find_dead_letter(settings, position)
    producer = Producer({**kafka_client_config(settings), "enable.idempotence": True})
    # Back to the partition it was read from: the rest of its order is there.
    producer.produce(
        letter.source_topic,
        key=letter.key,
        value=letter.value,
        partition=max(letter.source_partition, -1),
    )
    if producer.flush(READ_TIMEOUT) != 0:
        raise TimeoutError(f"the broker did not acknowledge the replayed event in {READ_TIMEOUT}s")
    return letter


def find_dead_letter(settings: Settings, position: str) -> DeadLetter:
    """The letter at PARTITION:OFFSET: LookupError if there is none there, Unreachable (not
    LookupError) if the broker does not answer."""
    partition, offset = _parse_position(position)
    check_broker(settings)
    consumer = _reader(settings)
    try:
        consumer.assign([TopicPartition(str(Topic.DEAD_LETTER), partition, offset)])
        for message in consumer.consume(1, READ_TIMEOUT):
            if message.error() is None and message.offset() == offset:
                return _parked(message)
        raise LookupError(f"no dead letter at {position}")
    finally:
        consumer.close()


def _reader(settings: Settings) -> Consumer:
    return Consumer(
        {
            **kafka_client_config(settings),
            "group.id": f"pizza_dlq-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )


def _parse_position(position: str) -> tuple[int, int]:
    partition, sep, offset = position.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise ValueError(
            f"a position is PARTITION:OFFSET, as `pizzashop dlq list` shows; not {position!r}"
        )
    return int(partition), int(offset)


def _parked(message: Message) -> DeadLetter:
    _, partition, offset = record_position(message)
    return DeadLetter.parked(
        message.key(), message.value(), record_headers(message) or [], (partition, offset)
    )
