"""The query side (CQRS): orders and their status history, as the web app and the CLI read them.

One small interface, `ReadModel`; SQLite is the embedded default, PostgreSQL is the other
implementation. Only the status service writes orders here, from `pizza-ordered` and
`pizza-status`. Applying the same events twice, or in another order, leaves the same view.
The web app keeps its sign-ins in the same database (not order state, so no dual write).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged

if TYPE_CHECKING:
    from pizzashop.readmodel.generations import Generations

# (topic, partition) -> the next offset to read, stored with the view it produced.
Offsets = Mapping[tuple[str, int], int]
# (topic, partition, offset): where an event was read from.
Source = tuple[str, int, int]
# What the read model is made of: orders placed and their statuses.
Applied = Sequence[OrderPlaced | StatusChanged]
# The shape of the read model's tables. A change of shape raises it, and is never made by
# altering a database in place: `pizzashop readmodel rebuild` builds a new generation from the
# log beside the old one, which serves until the new one has caught up.
SCHEMA_VERSION = 1


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

    @property
    def status_text(self) -> str:
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
            "status_text": self.status.text,
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
    the stuck mark does not count as moving on.
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
        return new if reached is None or new > reached else Status.STUCK
    return max(current, new)


class ReadModel(Protocol):
    def apply(
        self, events: Applied, offsets: Offsets, sources: Sequence[Source] | None = None
    ) -> None:
        """Apply events and record the offsets they came from, in one database transaction.

        With `sources` (where each event was read from), status events of orders not placed
        are also kept aside, until the order is placed or they are parked as unknown.
        """

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """The offsets recorded by `apply`, so a restarted status service resumes there.

        Read when partitions are assigned: from then on, the writer reads again what it had
        kept in memory of its orders, since another writer may have moved them on meanwhile."""

    def get_order(self, order_id: str) -> OrderView | None: ...

    def orders_of(self, customer_id: str, limit: int = 50) -> list[OrderView]:
        """A customer's orders, newest first."""

    def recent_orders(self, limit: int = 50) -> list[OrderView]:
        """All customers' orders, newest first."""

    def history_after(self, order_id: str, seq: int) -> list[StatusEntry]:
        """Status entries of one order stored after `seq` (for live streams that reconnect)."""

    def last_history_seq(self) -> int:
        """The seq of the last status entry stored (0: none)."""

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, str]]:
        """(seq, order id) of the first `limit` status entries stored after `seq`, in seq
        order, whatever their order: how a web process follows every change with one query."""

    def stalled_orders(self, not_moved_since: int) -> list[OrderView]:
        """Orders not final and not moved since the given time (ms)."""

    def orders_by_status(self) -> dict[Status, int]:
        """How many orders are at each status now (placed orders only)."""

    def orders_on_their_way(self) -> dict[Status, int]:
        """How many placed orders show each status that is not final (stuck included)."""

    def statuses_reached_since(self, since: int) -> dict[Status, int]:
        """How many status entries of each status were reached at or after `since` (ms)."""

    def step_durations(self, start: Status, end: Status, since: int, limit: int) -> list[int]:
        """Milliseconds from `start` to `end`, for the latest `limit` orders that reached `end`
        at or after `since` (ms): a bounded window, read through an index on the timestamp."""

    def stuck_orders(self, limit: int = 10) -> list[OrderView]:
        """Orders marked stuck and not moved on since, longest stuck first."""

    def unplaced_events(self, seen_before: int) -> list[UnplacedEvent]:
        """Every kept-aside event of the orders not placed although first seen before `seen_before` (ms
        on the status service's clock): orders that, by now, are unknown."""

    def forget_unplaced(self, order_ids: Iterable[str]) -> None:
        """Drop orders that were never placed, with their history, once their events are parked."""

    # --- the web app's sign-ins: kept here so that every web process sees a sign-out -------

    def start_web_session(self, session_id: str, customer_id: str, started_at: int) -> None:
        """Record a sign-in (ms since the epoch)."""

    def web_session_is_open(self, session_id: str, started_after: int) -> bool:
        """Whether the sign-in is known, not ended, and started after `started_after` (ms)."""

    def end_web_session(self, session_id: str, ended_at: int) -> None:
        """Sign-out: the session is over for every copy of its cookie."""

    def forget_web_sessions(self, started_before: int) -> None:
        """Drop sign-ins started before `started_before` (ms): they are over by their age."""

    def close(self) -> None: ...


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


def open_readmodel(url: str) -> ReadModel:
    """`sqlite:///path/to/file` (the default) or `postgresql://...`: its live generation (see
    generations.py), which a `pizzashop readmodel rebuild` may have replaced."""
    generations = generations_at(url)
    try:
        return generations.open(generations.live())
    finally:
        generations.close()


def generations_at(url: str) -> Generations:
    """The generations of the read model at `url`, or ReadModelUnusable saying what is missing."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401  # only to say what to install when it is missing
        except ImportError as e:
            raise ReadModelUnusable(
                f"a PostgreSQL read model needs psycopg ({e.name} is missing): "
                "pip install 'pizzashop[postgres]'"
            ) from e
    from pizzashop.readmodel.generations import generations_of

    return generations_of(url)


def readmodel_exists(url: str) -> bool:
    """False for a SQLite file not made yet (a reading command must not make one)."""
    if url.startswith("sqlite:///"):
        from pizzashop.readmodel.generations import SqliteGenerations

        generations = SqliteGenerations(Path(url.removeprefix("sqlite:///")))
        return generations.path_of(generations.live()).exists()
    return True
