"""The query side (CQRS): orders and their status history, as the web app and the CLI read them.

One part for each kind of user, all on one database (store.py opens them together): the
status service's writer (writer.py), the order views of the web app and the CLI (views.py),
the watchdog's queries (watchdog.py) and the pipeline page's (pipeline.py). SQLite is the
embedded default, PostgreSQL the other database. Only the status service writes orders here,
from `pizza-ordered` and `pizza-status`, and what it learns of the pantry from `pizza-reserved`
and `pizza-stock` (pantry.py); applying the same events twice, or in another order, leaves the
same view. The web app keeps its sign-ins in the same database (web/sign_ins.py).

This module holds what the parts share: the shapes of what they answer, and the rule that a
status never moves backwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged

# (topic, partition) -> the next offset to read, stored with the view it produced.
Offsets = Mapping[tuple[str, int], int]
# (topic, partition, offset): where an event was read from.
Source = tuple[str, int, int]
# What the read model is made of: orders placed and their statuses.
Applied = Sequence[OrderPlaced | StatusChanged]
# The shape of the read model's tables. A change of shape raises it, and is never made by
# altering a database in place: `pizzashop readmodel rebuild` builds a new generation from the
# log beside the old one, which serves until the new one has caught up.
SCHEMA_VERSION = 2  # 2: the pantry's tables, `stock` and `sold_out`


@dataclass(frozen=True)
class StatusEntry:
    seq: int  # increases with every entry the read model stores; a stream resumes after it
    status: Status
    timestamp: int  # ms since the epoch, when the status was reached


@dataclass(frozen=True)
class OrderView:
    order_id: str
    customer_id: str | None
    order: Order | None  # None while only status events for this id have been seen
    placed_at: int | None
    status: Status
    history: tuple[StatusEntry, ...]
    updated_at: int  # ms, when the order last moved
    partition: int | None = None  # the partition number it was placed on (None: not known)
    sold_out: str | None = None  # the ingredient the pantry was short of, for this order

    @property
    def status_text(self) -> str:
        if self.status is Status.SOLD_OUT and self.sold_out:
            return f"Sold out: {self.sold_out}"
        return self.status.text

    @property
    def partition_to_send_to(self) -> int:
        """Where the order's later events go: its partition (-1, by its key, if not known)."""
        return -1 if self.partition is None else self.partition

    def as_dict(self, for_its_customer: bool = False) -> dict[str, Any]:
        """The order as JSON: for its customer (the web API) without their own id in it."""
        hidden = {"customer_id"} if for_its_customer else set()
        shown: dict[str, Any] = {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "order": self.order.model_dump(exclude=hidden) if self.order else None,
            "placed_at": self.placed_at,
            "status": self.status.value,
            "status_text": self.status_text,
            "sold_out": self.sold_out,
            "history": [
                {"status": e.status.value, "text": e.status.text, "timestamp": e.timestamp}
                for e in self.history
            ],
        }
        return {key: value for key, value in shown.items() if key not in hidden}


@dataclass(frozen=True)
class UnplacedEvent:
    """A status event for an order the read model has not seen placed (yet)."""

    order_id: str
    status: Status
    timestamp: int
    source: Source


def status_after(current: Status | None, new: Status, reached: Status | None = None) -> Status:
    """The status an order shows once `new` arrives: statuses never move backwards.

    A final status (delivered, invalid) stays. `STUCK` shows until the order moves on,
    past `reached` (the furthest step seen before, if known): a late step from before
    the stuck mark does not count as moving on. Nor does the order's placing: only a
    placed order is marked, so a placing read after the mark (its topic read later, as a
    rebuild may) is from before it.
    """
    if current is None:
        return new
    if current.is_final:
        return current
    if new is Status.STUCK:
        return Status.STUCK
    if new is Status.INVALID_ORDER:
        return new
    if current is Status.STUCK:
        return new if new > (reached or Status.RECEIVED) else Status.STUCK
    return max(current, new)


class ReadModelUnusable(RuntimeError):
    """The read model cannot be opened: why, and what to do, in one line."""


def check_schema_version(found: int) -> None:
    """ReadModelUnusable unless a database at schema version `found` is one this code reads."""
    if found < SCHEMA_VERSION:
        raise ReadModelUnusable(
            f"the read model is at schema version {found}, this code needs {SCHEMA_VERSION}: "
            "run `pizzashop readmodel rebuild`"
        )
    if found > SCHEMA_VERSION:
        raise ReadModelUnusable(
            f"the read model is at schema version {found}, newer than this code's "
            f"{SCHEMA_VERSION}: run the newer code, or `pizzashop readmodel rebuild` with this one"
        )
