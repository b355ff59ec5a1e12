"""A kitchen service's own state, per order, kept in a compacted changelog topic.

The state of a partition lives in the same partition number of the changelog, so it moves with
the partition to whichever instance owns it and survives restarts. An order the service has
handled stays in its state as HANDLED, so the same order coming again (a customer's retry, a
second producer, `pizzashop retry`) is recognised and ignored; `remember_for` after that it
is forgotten with a tombstone, which keeps the state bounded.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from pizzashop.config import Settings
from pizzashop.topics import read_to_end

State = dict[str, Any]
HANDLED = "handled"  # the service is done with this order: it ignores the order's events from now on
RESTORE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Change:
    """One record of the changelog: an order's new state (None: forgotten), and when (ms)."""

    partition: int
    order_id: str
    value: Any
    timestamp: int


class ServiceState:
    """Every owned partition's state, and when each of its handled orders was handled."""

    def __init__(self, remember_for_ms: int) -> None:
        self.remember_for_ms = remember_for_ms
        self._states: dict[int, State] = {}
        # Per partition, handled orders oldest first: forgetting stops at the first young one.
        self._handled: dict[int, OrderedDict[str, int]] = {}

    def of(self, partition: int) -> State:
        state = self._states.get(partition)
        if state is None:
            state = self._states[partition] = {}
        return state

    def change(self, partition: int, changes: Mapping[str, Any], now_ms: int) -> None:
        for order_id, value in changes.items():
            self.apply(Change(partition, order_id, value, now_ms))

    def apply(self, change: Change) -> None:
        state = self.of(change.partition)
        handled = self._handled.setdefault(change.partition, OrderedDict())
        handled.pop(change.order_id, None)
        if change.value is None:
            state.pop(change.order_id, None)
            return
        state[change.order_id] = change.value
        if change.value == HANDLED:
            handled[change.order_id] = change.timestamp

    def restore(self, partitions: Iterable[int], changes: Iterable[Change]) -> int:
        """Replace the state of `partitions` with what the changelog says; orders restored."""
        partitions = set(partitions)
        self.drop(partitions)
        for partition in partitions:
            self.of(partition)
        for change in changes:
            self.apply(change)
        return sum(len(self._states[p]) for p in partitions)

    def drop(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._states.pop(partition, None)
            self._handled.pop(partition, None)

    def forget_handled(self, now_ms: int) -> list[Change]:
        """Forget the orders handled `remember_for` ago or earlier; their tombstones to produce."""
        forgotten = []
        for partition, handled in self._handled.items():
            while handled:
                order_id, handled_at = next(iter(handled.items()))
                if now_ms - handled_at < self.remember_for_ms:
                    break
                handled.popitem(last=False)
                self._states[partition].pop(order_id, None)
                forgotten.append(Change(partition, order_id, None, now_ms))
        return forgotten


def read_changelog(settings: Settings, topic: str, partitions: set[int],
                   committed_only: bool) -> Iterator[Change]:
    """Every change of some partitions' state, from the start of the changelog to its end."""
    for message in read_to_end(settings, topic, partitions, committed_only, RESTORE_TIMEOUT):
        yield _change_of(message)


def _change_of(message: Message) -> Change:
    key = (message.key() or b"").decode("utf-8", errors="replace")
    value = message.value()
    _, timestamp = message.timestamp()
    return Change(message.partition(), key, json.loads(value) if value else None, timestamp)
