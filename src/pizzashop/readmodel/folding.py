"""How a batch of events folds into what the read model holds of each order, before a line of
SQL is written: which statuses are news, what an order shows, what each table gets.

Pure: the writer (writer.py) reads what is known, folds the batch in here, and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pizzashop.contract import OrderPlaced, Status, StatusChanged, now_ms
from pizzashop.readmodel import Source, status_after


@dataclass
class Known:
    """What the read model holds about one order, kept up to date while a batch is folded in."""

    status: Status | None = None
    updated_at: int = 0
    reached: Status | None = None  # the furthest step on the way to the customer
    stored: set[Status] = field(default_factory=set)
    placed: bool = False  # its OrderPlaced has been applied
    was_unplaced: bool = False  # stored before this batch, with status events only

    def is_news(self, status: Status, timestamp: int) -> bool:
        """False for a replay, for a step after "cancelled", and for a stuck mark that is
        stale or says nothing new.

        An order can stall more than once, so a stuck mark counts while it is newer than
        the order's last move; its history keeps the first mark only.
        """
        if self.status is Status.CANCELLED and status.is_assembled:
            return False  # assemble decided it: nothing of a cancelled pizza is assembled
        if status is not Status.STUCK:
            return status not in self.stored
        if self.status is not None and (self.status.is_final or self.status is Status.STUCK):
            return False
        return timestamp > self.updated_at

    def take(self, status: Status, timestamp: int) -> None:
        self.status = status_after(self.status, status, reached=self.reached)
        if not status.is_error:
            self.reached = max(self.reached or status, status)
        self.stored.add(status)
        self.updated_at = max(self.updated_at, timestamp)


@dataclass
class Changes:
    """What one batch writes: history rows in arrival order (their seq follows it)."""

    history: list[tuple[str, int, int]] = field(default_factory=list)
    placed: dict[str, OrderPlaced] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)  # of the orders placed, where
    touched: set[str] = field(default_factory=set)
    unplaced: list[tuple[str, int, int, str, int, int, int]] = field(default_factory=list)


def fold(event: OrderPlaced | StatusChanged, order: Known, changes: Changes) -> None:
    status = Status.RECEIVED if isinstance(event, OrderPlaced) else Status(event.status)
    timestamp = event.timestamp or 0
    if isinstance(event, OrderPlaced):
        changes.placed.setdefault(event.order_id, event)
        changes.touched.add(event.order_id)
        order.placed = True
    if not order.is_news(status, timestamp):
        return
    if status not in order.stored:
        changes.history.append((event.order_id, int(status), timestamp))
    order.take(status, timestamp)
    changes.touched.add(event.order_id)


def note_partitions(
    events: Sequence[OrderPlaced | StatusChanged], sources: Sequence[Source], changes: Changes
) -> None:
    """Where each order was placed: its later events (a stuck mark, a retry) go there too."""
    for event, (_topic, partition, _offset) in zip(events, sources, strict=True):
        if isinstance(event, OrderPlaced):
            changes.partitions.setdefault(event.order_id, partition)


def set_aside_unplaced(
    events: Sequence[OrderPlaced | StatusChanged],
    sources: Sequence[Source],
    known: dict[str, Known],
    changes: Changes,
) -> None:
    """Status events of orders still not placed once the batch is in: kept with where they
    came from, so the watchdog can park them if the order never turns up."""
    seen_at = now_ms()
    for event, (topic, partition, offset) in zip(events, sources, strict=True):
        if isinstance(event, StatusChanged) and not known[event.order_id].placed:
            changes.unplaced.append(
                (
                    topic,
                    partition,
                    offset,
                    event.order_id,
                    int(event.status),
                    event.timestamp or 0,
                    seen_at,
                )
            )


def remember(order: Known, status: Status, timestamp: int) -> None:
    """Rebuild what an order's stored history says, without touching its current status."""
    order.stored.add(status)
    if not status.is_error:
        order.reached = max(order.reached or status, status)
