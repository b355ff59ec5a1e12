"""Where the bench sees orders arrive: the shop's read model, or the reference chain's last topic.

Both give (order id, status, timestamp ms) as they come; the bench stamps when it saw them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.contract import Status
from pizzashop.runtime.clients import consumer_config
from pizzashop.runtime.work import BATCH_SIZE

Sighting = tuple[str, int, int]  # order id, status, the status's own timestamp (ms)
ROWS_PER_LOOK = 5000


class Watch(Protocol):
    def new_sightings(self) -> list[Sighting]: ...

    def close(self) -> None: ...


class ReadModelWatch:
    """Every status the read model stores, in the order it stores them.

    Reads the SQLite file's history by its sequence number: the order views answer
    one order at a time, far too slow to follow thousands of orders every few milliseconds.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._seq = 0

    def new_sightings(self) -> list[Sighting]:
        if self._db is None:
            if not self.path.exists():
                return []  # the status service creates it when it starts
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        rows = self._db.execute(
            "SELECT seq, order_id, status, timestamp FROM status_history WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (self._seq, ROWS_PER_LOOK),
        ).fetchall()
        if rows:
            self._seq = rows[-1][0]
        return [(order_id, status, timestamp) for _, order_id, status, timestamp in rows]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


class TopicWatch:
    """The reference chain's last topic, read like the status service reads pizza-status."""

    def __init__(self, settings: Settings, topic: str, name: str) -> None:
        # The runtime's consumer settings (isolation, fetch wait, ...), as a hop of the chain
        # reads. Assigned, not subscribed: the group id in them is never joined.
        self._consumer = Consumer(consumer_config(settings, name))
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])

    def new_sightings(self) -> list[Sighting]:
        sightings = []
        for message in self._consumer.consume(BATCH_SIZE, 0):
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                continue  # transient (a broker reconnect): the consumer carries on by itself
            key = (message.key() or b"").decode()
            sightings.append((key, int(Status.DELIVERED), contract.now_ms()))
        return sightings

    def close(self) -> None:
        self._consumer.close()
