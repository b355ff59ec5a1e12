"""What a kitchen service remembers per order, and where it is kept in Kafka.

- Its **state** (delivery's orders on their way: who the customer is, or that the pizza is
  baked) is kept in a compacted changelog topic, partition by partition like its input, so it
  moves with its partitions to whichever instance owns them and survives restarts.
- The orders it has **handled** are remembered as HANDLED, so the same order coming again (a
  customer's retry, a second producer, `pizzashop retry`) is ignored. They cost no write of
  their own: the status a service produces for an order it handled (200 or 500 for assemble,
  300 for bake, 400 for delivery) is in `pizza-status`, in the same transaction as its
  offsets, and is read back from there on start and on rebalance. An order is forgotten
  `remember_for` after it was handled, which keeps the memory bounded.
- Every other entry is **waiting** for something (delivery: its baked pizza, or its order):
  when it last changed is kept too, so the service can say what happens to entries that
  waited too long (`waiting_since`), and none stays forever.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.contract import ContractError, Status, StatusChanged, Topic
from pizzashop.kafka.records import record_position
from pizzashop.kafka.topics import read_to_end, wait_for_open_transactions
from pizzashop.service import HANDLED, State

log = logging.getLogger("pizzashop.runtime")

RESTORE_TIMEOUT = 60.0
# Longer than a transaction may stay open (transaction.timeout.ms, runtime/clients.py) plus
# the broker's check for timed-out ones (10 s by default).
OPEN_TRANSACTIONS_WAIT = 25.0


@dataclass(frozen=True)
class Change:
    """An order's new state in one partition (None: gone), and when it changed (ms)."""

    partition: int
    order_id: str
    value: Any
    timestamp: int


@dataclass(frozen=True)
class Waiting:
    """A state entry that has waited: where, for which order, what it holds, since when (ms)."""

    partition: int
    order_id: str
    value: Any
    since: int


class ServiceState:
    """Every owned partition's state, when each of its handled orders was handled, and since
    when each other entry has waited."""

    def __init__(self, remember_for_ms: int) -> None:
        self.remember_for_ms = remember_for_ms
        self._states: dict[int, State] = {}
        # Per partition, handled orders oldest first: forgetting stops at the first young one.
        self._handled: dict[int, OrderedDict[str, int]] = {}
        # Per partition, the other entries by when they last changed, oldest first.
        self._waiting: dict[int, OrderedDict[str, int]] = {}

    def of(self, partition: int) -> State:
        state = self._states.get(partition)
        if state is None:
            state = self._states[partition] = {}
        return state

    def change(self, partition: int, changes: Mapping[str, Any], now_ms: int) -> None:
        """Called for every event a kitchen service takes: kept to a few dictionary steps."""
        if not changes:
            return
        state = self.of(partition)
        handled = self._handled.setdefault(partition, OrderedDict())
        waiting = self._waiting.setdefault(partition, OrderedDict())
        for order_id, value in changes.items():
            handled.pop(order_id, None)
            waiting.pop(order_id, None)
            if value is None:
                state.pop(order_id, None)
                continue
            state[order_id] = value
            if value == HANDLED:
                handled[order_id] = now_ms
            else:
                waiting[order_id] = now_ms

    def apply(self, change: Change) -> None:
        self.change(change.partition, {change.order_id: change.value}, change.timestamp)

    def restore(self, partitions: Iterable[int], changes: Iterable[Change]) -> int:
        """Replace the state of `partitions` with these changes, in order; orders restored."""
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
            self._waiting.pop(partition, None)

    def __len__(self) -> int:
        """Entries kept, over every owned partition."""
        return sum(len(state) for state in self._states.values())

    def waiting_since(self, before_ms: int) -> list[Waiting]:
        """The entries (not handled) that have not changed since before `before_ms`."""
        found = []
        for partition, waiting in self._waiting.items():
            for order_id, since in waiting.items():
                if since >= before_ms:
                    break
                found.append(Waiting(partition, order_id, self._states[partition][order_id], since))
        return found

    def forget_handled(self, now_ms: int) -> int:
        """Forget the orders handled `remember_for` ago or earlier; how many."""
        forgotten = 0
        for partition, handled in self._handled.items():
            while handled:
                order_id, handled_at = next(iter(handled.items()))
                if now_ms - handled_at < self.remember_for_ms:
                    break
                handled.popitem(last=False)
                self._states[partition].pop(order_id, None)
                forgotten += 1
        return forgotten


def changelog_value(value: Any) -> bytes | None:
    """What the changelog keeps of a state: HANDLED is known from `pizza-status` instead, so
    the order's entry goes (a tombstone), as does a state of None."""
    return json.dumps(value).encode() if kept_in_changelog(value) else None


def kept_in_changelog(value: Any) -> bool:
    return value is not None and value != HANDLED


def read_changelog(
    settings: Settings, topic: str, partitions: set[int], committed_only: bool
) -> Iterator[Change]:
    """Every change of some partitions' state, from the start of the changelog to its end."""
    if committed_only:
        _after_open_transactions(settings, topic, partitions)
    for message in read_to_end(settings, topic, partitions, committed_only, RESTORE_TIMEOUT):
        _, partition, _ = record_position(message)
        key, value = _order_id(message), message.value()
        yield Change(partition, key, json.loads(value) if value else None, _timestamp(message))


def read_handled(
    settings: Settings,
    partitions: set[int],
    handled_statuses: frozenset[Status],
    since_ms: int,
    committed_only: bool,
) -> Iterator[Change]:
    """The orders a service handled since `since_ms`: those its own statuses say it handled."""
    if committed_only:
        _after_open_transactions(settings, str(Topic.STATUS), partitions)
    for message in read_to_end(
        settings, str(Topic.STATUS), partitions, committed_only, RESTORE_TIMEOUT, since_ms=since_ms
    ):
        if _timestamp(message) < since_ms:
            continue  # an older timestamp behind a newer one: the log is in write order, not time
        try:
            event = contract.decode(str(Topic.STATUS), message.key(), message.value())
        except ContractError:
            continue  # not a status of ours: parked by the status service, nothing to remember
        if isinstance(event, StatusChanged) and event.status in handled_statuses:
            _, partition, _ = record_position(message)
            yield Change(partition, event.order_id, HANDLED, _timestamp(message))


def _after_open_transactions(settings: Settings, topic: str, partitions: set[int]) -> None:
    """The last owner's final commit included, which may not be readable yet (see
    `wait_for_open_transactions`). A transaction still open at the deadline is a paused
    owner's, which the broker aborts (transaction.timeout.ms): nothing of it is state."""
    if not wait_for_open_transactions(settings, topic, partitions, OPEN_TRANSACTIONS_WAIT):
        log.warning(
            "A transaction on %s %s is still open after %gs: restoring without it",
            topic,
            sorted(partitions),
            OPEN_TRANSACTIONS_WAIT,
        )


def _order_id(message: Message) -> str:
    return (message.key() or b"").decode("utf-8", errors="replace")


def _timestamp(message: Message) -> int:
    _, timestamp = message.timestamp()
    return int(timestamp)
