"""Confluent's wire format, used when a Schema Registry is configured: a 0 byte, the 4-byte
id of the schema the value was written with (big-endian), then the JSON value itself.

Every reader takes framed and plain values alike (the seed's, kcat's, a producer not yet
switched), so a running shop can move one producer at a time. What a framed value names is
checked by the `Framing` in use (`registry.RegistryFraming`): an id the registry does not know,
or a value its schema refuses, is a ContractError, and so a dead letter with that reason.
Without one, the frame is taken off and the value read as it is.
"""

from __future__ import annotations

from typing import Protocol

MAGIC = b"\x00"
FRAME_BYTES = 5  # the magic byte and the schema id


class Framing(Protocol):
    """Which schema id each topic's values are written with, and the check of a read one."""

    def schema_id_for(self, topic: str) -> int | None:
        """The id to frame `topic`'s values with (None: written plain)."""
        ...

    def check(self, topic: str, schema_id: int, payload: bytes) -> None:
        """ContractError unless the registry knows `schema_id` and its schema allows `payload`."""
        ...


_in_use: Framing | None = None


def use(framing: Framing | None) -> None:
    """Frame what this process writes, and check what it reads, with `framing` (None: plain)."""
    global _in_use
    _in_use = framing


def in_use() -> Framing | None:
    return _in_use


def framed(topic: str, payload: bytes) -> bytes:
    """`payload` as this process writes it on `topic`: framed when a registry is in use."""
    framing = _in_use
    schema_id = None if framing is None or not payload else framing.schema_id_for(topic)
    if schema_id is None:
        return payload
    return MAGIC + schema_id.to_bytes(4, "big") + payload


def is_framed(value: bytes) -> bool:
    # JSON text starts with a brace, a bracket, a letter, a digit or white space: never a 0 byte.
    return value[:1] == MAGIC


def schema_id_of(value: bytes) -> int | None:
    """The schema id a framed value names (None: too short to name one)."""
    if len(value) < FRAME_BYTES:
        return None
    return int.from_bytes(value[1:FRAME_BYTES], "big")


def json_of(value: bytes) -> bytes:
    """A value's JSON, framed or not, for those that only show it (its schema id unchecked)."""
    return value[FRAME_BYTES:] if is_framed(value) and len(value) >= FRAME_BYTES else value
