"""The dead-letter topic's records: an event a service gave up on, as `pizza-dlq` carries it,
with where it came from, why and who parked it in the record's headers, named here once."""

from __future__ import annotations

from dataclasses import dataclass

DLQ_SOURCE_TOPIC, DLQ_SOURCE_PARTITION, DLQ_SOURCE_OFFSET = (
    "source_topic",
    "source_partition",
    "source_offset",
)
DLQ_ERROR, DLQ_SERVICE = "error", "service"


@dataclass(frozen=True)
class DeadLetter:
    """An event a service gave up on, parked in `pizza-dlq` as it was read: its key and value,
    and in the record's headers where it came from, why, and who parked it. `parked_at` is
    where it is parked (partition, offset), once read back from there."""

    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    error: str
    service: str = ""
    parked_at: tuple[int, int] | None = None

    @property
    def position(self) -> str:
        """Where it is parked, as `pizzashop dlq list` shows it and `dlq replay` takes it."""
        partition, offset = self.parked_at or (-1, -1)
        return f"{partition}:{offset}"

    def headers(self) -> list[tuple[str, str]]:
        return [
            (DLQ_SOURCE_TOPIC, self.source_topic),
            (DLQ_SOURCE_PARTITION, str(self.source_partition)),
            (DLQ_SOURCE_OFFSET, str(self.source_offset)),
            (DLQ_ERROR, self.error),
            (DLQ_SERVICE, self.service),
        ]

    @classmethod
    def parked(
        cls,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        parked_at: tuple[int, int],
    ) -> DeadLetter:
        found = {k: (v or b"").decode("utf-8", "replace") for k, v in headers}
        return cls(
            found.get(DLQ_SOURCE_TOPIC, ""),
            int(found.get(DLQ_SOURCE_PARTITION, "-1")),
            int(found.get(DLQ_SOURCE_OFFSET, "-1")),
            key,
            value,
            found.get(DLQ_ERROR, ""),
            found.get(DLQ_SERVICE, ""),
            parked_at,
        )
