"""The dead-letter topic: what was parked there, and replaying an event once it can be handled.

Every record in `pizza-dlq` carries the original key and value, and in its headers the
source topic, partition and offset, the error and the service that parked it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Topic
from pizzashop.topics import read_to_end

READ_TIMEOUT = 30.0


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    source_topic: str
    source_partition: int
    source_offset: int
    error: str
    service: str

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


def read_dead_letters(settings: Settings, limit: int | None = None) -> list[DeadLetter]:
    """Everything in the dead-letter topic (the first `limit`, if given), by partition and offset."""
    letters: list[DeadLetter] = []
    for message in read_to_end(settings, str(Topic.DEAD_LETTER), timeout=READ_TIMEOUT):
        letters.append(_dead_letter(message))
        if limit is not None and len(letters) >= limit:
            break
    return sorted(letters, key=lambda d: (d.partition, d.offset))


def replay(settings: Settings, position: str) -> DeadLetter:
    """Produce a parked event again to the topic it came from, as it was."""
    letter = find_dead_letter(settings, position)
    producer = Producer({**kafka_client_config(settings), "enable.idempotence": True})
    # Back to the partition it was read from: the rest of its order is there.
    producer.produce(letter.source_topic, key=letter.key, value=letter.value,
                     partition=max(letter.source_partition, -1))
    if producer.flush(READ_TIMEOUT) != 0:
        raise TimeoutError(f"the broker did not acknowledge the replayed event in {READ_TIMEOUT}s")
    return letter


def find_dead_letter(settings: Settings, position: str) -> DeadLetter:
    partition, offset = _parse_position(position)
    consumer = _reader(settings)
    try:
        consumer.assign([TopicPartition(str(Topic.DEAD_LETTER), partition, offset)])
        for message in consumer.consume(1, READ_TIMEOUT):
            if message.error() is None and message.offset() == offset:
                return _dead_letter(message)
        raise LookupError(f"no dead letter at {position}")
    finally:
        consumer.close()


def _reader(settings: Settings) -> Consumer:
    return Consumer({
        **kafka_client_config(settings),
        "group.id": f"pizza_dlq-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    })


def _parse_position(position: str) -> tuple[int, int]:
    partition, sep, offset = position.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise ValueError(f"a position is PARTITION:OFFSET, as `pizzashop dlq list` shows; not {position!r}")
    return int(partition), int(offset)


def _dead_letter(message: Message) -> DeadLetter:
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in (message.headers() or [])}
    return DeadLetter(
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        value=message.value(),
        source_topic=headers.get("source_topic", ""),
        source_partition=int(headers.get("source_partition", "-1")),
        source_offset=int(headers.get("source_offset", "-1")),
        error=headers.get("error", ""),
        service=headers.get("service", ""),
    )
