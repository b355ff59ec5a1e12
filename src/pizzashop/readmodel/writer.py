"""The status service's writer: each batch of events into the read model, in one transaction
with the offsets it came from, so every event is applied once whatever the processing
guarantee. A rebuild from the log writes through the same `apply_to`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pizzashop.contract import Event, OrderPlaced, Status, StatusChanged
from pizzashop.readmodel import Applied, Offsets, Source
from pizzashop.readmodel.database import (
    ORDER_COLUMNS,
    Database,
    chunks,
    marks,
    stored_offsets,
    stored_offsets_in,
)
from pizzashop.readmodel.folding import (
    Changes,
    Known,
    fold,
    note_partitions,
    remember,
    set_aside_unplaced,
)
from pizzashop.readmodel.pantry import PantryNews, write_pantry_news
from pizzashop.service import StaleBatch

# Orders on their way that the writer keeps in memory between batches (about 300 bytes each),
# so it need not read back what it wrote: past this many, it starts over from the database.
REMEMBERED_ORDERS = 50_000


def apply_to(
    writer: OrderWriter,
    events: Sequence[Event],
    offsets: Mapping[tuple[str, int], int],
    sources: Sequence[Source] | None = None,
) -> list[OrderPlaced | StatusChanged]:
    """Write a batch into the read model, the one way it is done (by the status service, and
    by a rebuild from the log): the events it is made of, with the offsets they came from.
    The orders' events are returned; what the pantry said is written beside them."""
    wanted = [i for i, e in enumerate(events) if isinstance(e, (OrderPlaced, StatusChanged))]
    updates = [e for e in events if isinstance(e, (OrderPlaced, StatusChanged))]
    chosen = None if sources is None else [sources[i] for i in wanted]
    writer.apply(updates, offsets, chosen, PantryNews.of(events))
    return updates


class OrderWriter:
    def __init__(self, database: Database) -> None:
        self._database = database
        # What this writer stored of the orders it owns that are placed and not final yet.
        # Only its own partitions' orders reach it, so nobody else changes them, until the
        # partitions move or the database is switched to a rebuilt generation: then
        # `stored_offsets` is read, and forgets it all.
        self._remembered: dict[str, Known] = {}

    def apply(
        self,
        events: Applied,
        offsets: Offsets,
        sources: Sequence[Source] | None = None,
        pantry: PantryNews | None = None,
    ) -> None:
        """Apply events (and what the pantry said) and record the offsets they came from, in
        one database transaction.

        With `sources` (where each event was read from), status events of orders not placed
        are also kept aside, until the order is placed or they are parked as unknown.
        """
        try:
            with self._database.transaction(writing=True) as cursor:
                if sources:
                    self._refuse_if_applied(cursor, sources)
                known = self._known(cursor, {e.order_id for e in events})
                changes = Changes()
                for event in events:
                    fold(event, known.setdefault(event.order_id, Known()), changes)
                if sources is not None:
                    note_partitions(events, sources, changes)
                    set_aside_unplaced(events, sources, known, changes)
                self._write_history(cursor, changes)
                self._write_orders(cursor, known, changes)
                self._write_unplaced(cursor, known, changes)
                if pantry:
                    write_pantry_news(cursor, self._database.placeholder, pantry)
                self._write_offsets(cursor, offsets)
        except BaseException:
            self._remembered.clear()  # it was folded into, but not stored
            raise
        self._keep_in_memory(known)

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """The offsets recorded by `apply`, so a restarted status service resumes there.

        Read when partitions are assigned, and after a switch to a rebuilt generation: from
        then on, the writer reads again what it had kept in memory of its orders, since
        another writer may have moved them on meanwhile."""
        self._remembered.clear()
        return stored_offsets(self._database)

    def forget_unplaced(self, order_ids: Iterable[str]) -> None:
        """Drop orders that were never placed, with their history, once their events are parked."""
        with self._database.transaction(writing=True) as cursor:
            for chunk in chunks(sorted(set(order_ids))):
                never_placed = (
                    f"order_id IN ({marks(self._database, chunk)}) AND order_id NOT IN "
                    "(SELECT order_id FROM orders WHERE order_json IS NOT NULL)"
                )
                cursor.execute(f"DELETE FROM unplaced_events WHERE {never_placed}", chunk)
                cursor.execute(f"DELETE FROM status_history WHERE {never_placed}", chunk)
                cursor.execute(f"DELETE FROM orders WHERE {never_placed}", chunk)

    def _keep_in_memory(self, known: dict[str, Known]) -> None:
        """Keep what is now stored of placed orders still on their way. Orders never placed are
        left out: the watchdog of any instance may drop them (`forget_unplaced`)."""
        if len(self._remembered) > REMEMBERED_ORDERS:
            self._remembered.clear()
        for order_id, order in known.items():
            if order.placed and not (order.status is not None and order.status.is_final):
                order.was_unplaced = False
                self._remembered[order_id] = order
            else:
                self._remembered.pop(order_id, None)

    def _known(self, cursor: Any, order_ids: set[str]) -> dict[str, Known]:
        known = {i: self._remembered[i] for i in order_ids if i in self._remembered}
        for chunk in chunks(sorted(order_ids - known.keys())):
            listed = marks(self._database, chunk)
            cursor.execute(
                "SELECT order_id, status, updated_at, order_json IS NOT NULL "
                f"FROM orders WHERE order_id IN ({listed})",
                chunk,
            )
            for order_id, status, updated_at, placed in cursor.fetchall():
                known[order_id] = Known(
                    Status(status), updated_at, placed=bool(placed), was_unplaced=not placed
                )
            cursor.execute(
                f"SELECT order_id, status, timestamp FROM status_history WHERE order_id IN ({listed})",
                chunk,
            )
            for order_id, status, timestamp in cursor.fetchall():
                remember(known.setdefault(order_id, Known()), Status(status), timestamp)
        return known

    def _refuse_if_applied(self, cursor: Any, sources: Sequence[Source]) -> None:
        """StaleBatch when a partition's stored offset is past where the batch starts on it:
        whoever stored it applied these events, and what this writer kept in memory of their
        orders is out of date (the read model's own fence against a zombie)."""
        starts: dict[tuple[str, int], int] = {}
        for topic, partition, offset in sources:
            starts[(topic, partition)] = min(offset, starts.get((topic, partition), offset))
        stored = stored_offsets_in(cursor)
        applied = [f"{t}[{p}]" for (t, p), start in sorted(starts.items())
                   if stored.get((t, p), start) > start]  # fmt: skip
        if applied:
            raise StaleBatch(f"applied already by another instance: {', '.join(applied)}")

    def _write_history(self, cursor: Any, changes: Changes) -> None:
        p = self._database.placeholder
        cursor.executemany(
            f"INSERT INTO status_history (order_id, status, timestamp) VALUES ({p}, {p}, {p})",
            changes.history,
        )

    def _write_orders(self, cursor: Any, known: dict[str, Known], changes: Changes) -> None:
        p = self._database.placeholder
        placed, moved = _placed_and_moved(known, changes)
        cursor.executemany(
            f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, "
            "updated_at = excluded.updated_at, "
            "customer_id = COALESCE(orders.customer_id, excluded.customer_id), "
            "order_json = COALESCE(orders.order_json, excluded.order_json), "
            "placed_at = COALESCE(orders.placed_at, excluded.placed_at), "
            "partition_number = COALESCE(orders.partition_number, excluded.partition_number)",
            placed,
        )
        # Most writes only move an order on: leaving the placement columns out of the update
        # spares the customer index, which the database rewrites for every column set.
        cursor.executemany(
            f"INSERT INTO orders (order_id, status, updated_at) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
            moved,
        )

    def _write_unplaced(self, cursor: Any, known: dict[str, Known], changes: Changes) -> None:
        p = self._database.placeholder
        cursor.executemany(
            "INSERT INTO unplaced_events (topic, partition_number, offset_number, order_id, status, "
            f"timestamp, seen_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT DO NOTHING",
            changes.unplaced,
        )
        now_placed = sorted(i for i in changes.placed if known[i].was_unplaced)
        for chunk in chunks(now_placed):
            listed = marks(self._database, chunk)
            cursor.execute(f"DELETE FROM unplaced_events WHERE order_id IN ({listed})", chunk)

    def _write_offsets(self, cursor: Any, offsets: Offsets) -> None:
        p = self._database.placeholder
        cursor.executemany(
            f"INSERT INTO applied_offsets (topic, partition_number, next_offset) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (topic, partition_number) DO UPDATE SET next_offset = excluded.next_offset",
            [(topic, partition, offset) for (topic, partition), offset in offsets.items()],
        )


def _placed_and_moved(
    known: dict[str, Known], changes: Changes
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of the orders a batch touched: those placed in it, and those only moved on."""
    placed: list[tuple[Any, ...]] = []
    moved: list[tuple[Any, ...]] = []
    for order_id in sorted(changes.touched):
        order, event = known[order_id], changes.placed.get(order_id)
        if order.status is None:
            continue
        if event is None:
            moved.append((order_id, int(order.status), order.updated_at))
            continue
        placed.append(
            (
                order_id,
                event.order.customer_id,
                event.order.model_dump_json(),
                event.timestamp,
                int(order.status),
                order.updated_at,
                changes.partitions.get(order_id),
            )
        )
    return placed, moved
