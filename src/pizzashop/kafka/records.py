"""Reading a Kafka record's position and headers, typed: for anything that reads the log."""

from __future__ import annotations

from confluent_kafka import Message


def record_position(message: Message) -> tuple[str, int, int]:
    """Where a record is: its topic, partition and offset. A consumed or delivered record has
    all three (the client types them optional for error events, which may lack them)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError(f"a record with no position: {topic}[{partition}]@{offset}")
    return topic, partition, offset


def record_headers(message: Message) -> list[tuple[str, bytes | None]] | None:
    """A record's headers as a consumer gets them: (name, value) pairs. (The client's type also
    allows a dict and str values, which only a Message made by hand holds.)"""
    headers = message.headers()
    if headers is None:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(name, value.encode() if isinstance(value, str) else value) for name, value in pairs]
