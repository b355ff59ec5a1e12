"""The read model in SQL, written once for SQLite and PostgreSQL.

A subclass gives a DB-API connection, its placeholder style, its schema and how it takes
the write lock; everything else, above all how a batch of events is applied, lives here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged, now_ms
from pizzashop.readmodel import (
    SCHEMA_VERSION,
    Applied,
    Offsets,
    OrderView,
    Source,
    StatusEntry,
    UnplacedEvent,
    check_schema_version,
    status_after,
)

ORDER_COLUMNS = "order_id, customer_id, order_json, placed_at, status, updated_at, partition_number"
NOT_MOVING = ",".join(str(int(s)) for s in Status if s.is_final or s is Status.STUCK)
# Spelled into the SQL, not bound: only then can the databases use the partial indexes.
STUCK = int(Status.STUCK)
CHUNK = 500  # ids per IN (...) list, well under every database's limit on parameters
# Orders on their way that the writer keeps in memory between batches (about 300 bytes each),
# so it need not read back what it wrote: past this many, it starts over from the database.
REMEMBERED_ORDERS = 50_000

INDEXES = f"""
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, placed_at DESC);
CREATE INDEX IF NOT EXISTS orders_by_update ON orders (updated_at);
DROP INDEX IF EXISTS orders_in_progress;
CREATE INDEX IF NOT EXISTS orders_still_moving ON orders (updated_at) WHERE status NOT IN ({NOT_MOVING});
DROP INDEX IF EXISTS orders_by_progress;
CREATE INDEX IF NOT EXISTS unplaced_by_order ON unplaced_events (order_id);
CREATE INDEX IF NOT EXISTS orders_stuck ON orders (updated_at) WHERE status = {STUCK};
CREATE INDEX IF NOT EXISTS history_by_time ON status_history (timestamp);
CREATE INDEX IF NOT EXISTS web_sessions_by_start ON web_sessions (started_at);
"""


@dataclass
class _Known:
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
        if self.status is Status.CANCELLED and status.leaves_the_oven:
            return False  # bake decided it: nothing of a cancelled pizza leaves the oven
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
class _Changes:
    """What one batch writes: history rows in arrival order (their seq follows it)."""

    history: list[tuple[str, int, int]] = field(default_factory=list)
    placed: dict[str, OrderPlaced] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)  # of the orders placed, where
    touched: set[str] = field(default_factory=set)
    unplaced: list[tuple[str, int, int, str, int, int, int]] = field(default_factory=list)


class SqlReadModel:
    placeholder = "?"

    def __init__(self, connection: Any) -> None:
        self._db = connection
        self._lock = threading.Lock()  # one connection, shared by the threads of a web server
        # What this writer stored of the orders it owns that are placed and not final yet.
        # Only its own partitions' orders reach it, so nobody else changes them, until the
        # partitions move: `stored_offsets` (read when they are assigned) forgets it all.
        self._remembered: dict[str, _Known] = {}
        self._stamp_schema_version()

    def _stamp_schema_version(self) -> None:
        """A new database takes the code's version; one made before versions were kept has
        the current shape (the partition column was its last change) and takes it too."""
        with self._transaction(writing=True) as cursor:
            cursor.execute("SELECT version FROM schema_version")
            rows = cursor.fetchall()
            if not rows:
                p = self.placeholder
                cursor.execute(
                    f"INSERT INTO schema_version (version) VALUES ({p})", (SCHEMA_VERSION,)
                )
        if rows:
            check_schema_version(int(rows[0][0]))

    # --- writing ---------------------------------------------------------------------------

    def apply(
        self, events: Applied, offsets: Offsets, sources: Sequence[Source] | None = None
    ) -> None:
        try:
            with self._transaction(writing=True) as cursor:
                known = self._known(cursor, {e.order_id for e in events})
                changes = _Changes()
                for event in events:
                    _fold(event, known.setdefault(event.order_id, _Known()), changes)
                if sources is not None:
                    _note_partitions(events, sources, changes)
                    _set_aside_unplaced(events, sources, known, changes)
                self._write_history(cursor, changes)
                self._write_orders(cursor, known, changes)
                self._write_unplaced(cursor, known, changes)
                self._write_offsets(cursor, offsets)
        except BaseException:
            self._remembered.clear()  # it was folded into, but not stored
            raise
        self._keep_in_memory(known)

    def _keep_in_memory(self, known: dict[str, _Known]) -> None:
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

    def _known(self, cursor: Any, order_ids: set[str]) -> dict[str, _Known]:
        known = {i: self._remembered[i] for i in order_ids if i in self._remembered}
        for chunk in _chunks(sorted(order_ids - known.keys())):
            marks = self._marks(chunk)
            cursor.execute(
                "SELECT order_id, status, updated_at, order_json IS NOT NULL "
                f"FROM orders WHERE order_id IN ({marks})",
                chunk,
            )
            for order_id, status, updated_at, placed in cursor.fetchall():
                known[order_id] = _Known(
                    Status(status), updated_at, placed=bool(placed), was_unplaced=not placed
                )
            cursor.execute(
                f"SELECT order_id, status, timestamp FROM status_history WHERE order_id IN ({marks})",
                chunk,
            )
            for order_id, status, timestamp in cursor.fetchall():
                _remember(known.setdefault(order_id, _Known()), Status(status), timestamp)
        return known

    def _write_history(self, cursor: Any, changes: _Changes) -> None:
        p = self.placeholder
        cursor.executemany(
            f"INSERT INTO status_history (order_id, status, timestamp) VALUES ({p}, {p}, {p})",
            changes.history,
        )

    def _write_orders(self, cursor: Any, known: dict[str, _Known], changes: _Changes) -> None:
        p = self.placeholder
        placed, moved = [], []
        for order_id in sorted(changes.touched):
            order, event = known[order_id], changes.placed.get(order_id)
            if order.status is None:
                continue
            if event is None:
                moved.append((order_id, int(order.status), order.updated_at))
            else:
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

    def _write_unplaced(self, cursor: Any, known: dict[str, _Known], changes: _Changes) -> None:
        p = self.placeholder
        cursor.executemany(
            "INSERT INTO unplaced_events (topic, partition_number, offset_number, order_id, status, "
            f"timestamp, seen_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT DO NOTHING",
            changes.unplaced,
        )
        now_placed = sorted(i for i in changes.placed if known[i].was_unplaced)
        for chunk in _chunks(now_placed):
            marks = self._marks(chunk)
            cursor.execute(f"DELETE FROM unplaced_events WHERE order_id IN ({marks})", chunk)

    def forget_unplaced(self, order_ids: Iterable[str]) -> None:
        with self._transaction(writing=True) as cursor:
            for chunk in _chunks(sorted(set(order_ids))):
                marks = self._marks(chunk)
                never_placed = (
                    f"order_id IN ({marks}) AND order_id NOT IN "
                    "(SELECT order_id FROM orders WHERE order_json IS NOT NULL)"
                )
                cursor.execute(f"DELETE FROM unplaced_events WHERE {never_placed}", chunk)
                cursor.execute(f"DELETE FROM status_history WHERE {never_placed}", chunk)
                cursor.execute(f"DELETE FROM orders WHERE {never_placed}", chunk)

    def _write_offsets(self, cursor: Any, offsets: Offsets) -> None:
        p = self.placeholder
        cursor.executemany(
            f"INSERT INTO applied_offsets (topic, partition_number, next_offset) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (topic, partition_number) DO UPDATE SET next_offset = excluded.next_offset",
            [(topic, partition, offset) for (topic, partition), offset in offsets.items()],
        )

    # --- the web app's sign-ins -------------------------------------------------------------
    # Written without the status service's write lock: that lock guards the read-modify-write
    # of orders, and a sign-in should not wait for a batch of them.

    def start_web_session(self, session_id: str, customer_id: str, started_at: int) -> None:
        p = self.placeholder
        with self._transaction(writing=False) as cursor:
            cursor.execute(
                "INSERT INTO web_sessions (session_id, customer_id, started_at) "
                f"VALUES ({p}, {p}, {p})",
                (session_id, customer_id, started_at),
            )

    def web_session_is_open(self, session_id: str, started_after: int) -> bool:
        p = self.placeholder
        rows = self._query(
            f"SELECT 1 FROM web_sessions WHERE session_id = {p} AND ended_at IS NULL "
            f"AND started_at > {p}",
            (session_id, started_after),
        )
        return bool(rows)

    def end_web_session(self, session_id: str, ended_at: int) -> None:
        p = self.placeholder
        with self._transaction(writing=False) as cursor:
            cursor.execute(
                f"UPDATE web_sessions SET ended_at = {p} WHERE session_id = {p} "
                "AND ended_at IS NULL",
                (ended_at, session_id),
            )

    def forget_web_sessions(self, started_before: int) -> None:
        p = self.placeholder
        with self._transaction(writing=False) as cursor:
            cursor.execute(f"DELETE FROM web_sessions WHERE started_at < {p}", (started_before,))

    def web_sessions(self) -> list[tuple[Any, ...]]:
        """Every sign-in as a row, for a new generation of the read model to carry over."""
        return self._query("SELECT session_id, customer_id, started_at, ended_at FROM web_sessions")

    def carry_over_web_sessions(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Take another generation's sign-ins: a sign-out there stays a sign-out here."""
        p = self.placeholder
        with self._transaction(writing=False) as cursor:
            cursor.executemany(
                "INSERT INTO web_sessions (session_id, customer_id, started_at, ended_at) "
                f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (session_id) DO UPDATE SET "
                "ended_at = COALESCE(web_sessions.ended_at, excluded.ended_at)",
                rows,
            )

    def last_history_seq(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM status_history")[0][0])

    def number_history_after(self, seq: int) -> None:
        """New status entries get a seq above `seq` (another generation's last): a live stream
        that resumes after a seq it saw there misses nothing written here after the switch."""

    # --- reading ---------------------------------------------------------------------------

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        self._remembered.clear()  # partitions are moving: read what others may have written
        rows = self._query("SELECT topic, partition_number, next_offset FROM applied_offsets")
        return {(topic, partition): offset for topic, partition, offset in rows}

    def get_order(self, order_id: str) -> OrderView | None:
        p = self.placeholder
        views = self._views(f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = {p}", (order_id,))
        return views[0] if views else None

    def orders_of(self, customer_id: str, limit: int = 50) -> list[OrderView]:
        p = self.placeholder
        return self._views(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE customer_id = {p} "
            f"ORDER BY placed_at DESC, order_id LIMIT {p}",
            (customer_id, limit),
        )

    def recent_orders(self, limit: int = 50) -> list[OrderView]:
        p = self.placeholder
        return self._views(
            f"SELECT {ORDER_COLUMNS} FROM orders ORDER BY updated_at DESC, order_id LIMIT {p}",
            (limit,),
        )

    def every_order(self) -> list[OrderView]:
        """All orders, placed or only seen in status events, by id (to compare two models)."""
        return self._views(f"SELECT {ORDER_COLUMNS} FROM orders ORDER BY order_id", ())

    def history_after(self, order_id: str, seq: int) -> list[StatusEntry]:
        p = self.placeholder
        rows = self._query(
            f"SELECT seq, status, timestamp FROM status_history WHERE order_id = {p} AND seq > {p} "
            "ORDER BY seq",
            (order_id, seq),
        )
        return [StatusEntry(seq, Status(status), timestamp) for seq, status, timestamp in rows]

    def stalled_orders(self, not_moved_since: int) -> list[OrderView]:
        p = self.placeholder
        return self._views(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE status NOT IN ({NOT_MOVING}) AND updated_at < {p} "
            "AND order_json IS NOT NULL ORDER BY updated_at",
            (not_moved_since,),
        )

    def orders_by_status(self) -> dict[Status, int]:
        rows = self._query(
            "SELECT status, COUNT(*) FROM orders WHERE order_json IS NOT NULL GROUP BY status"
        )
        return {Status(status): count for status, count in rows}

    def orders_on_their_way(self) -> dict[Status, int]:
        # Two queries, each shaped like a partial index, so only open orders are read.
        moving = self._query(
            f"SELECT status, COUNT(*) FROM orders WHERE status NOT IN ({NOT_MOVING}) "
            "AND order_json IS NOT NULL GROUP BY status"
        )
        stuck = self._query(
            f"SELECT COUNT(*) FROM orders WHERE status = {STUCK} AND order_json IS NOT NULL"
        )
        counts = {Status(status): count for status, count in moving}
        return {**counts, Status.STUCK: stuck[0][0]} if stuck[0][0] else counts

    def statuses_reached_since(self, since: int) -> dict[Status, int]:
        p = self.placeholder
        rows = self._query(
            f"SELECT status, COUNT(*) FROM status_history WHERE timestamp >= {p} GROUP BY status",
            (since,),
        )
        return {Status(status): count for status, count in rows}

    def step_durations(self, start: Status, end: Status, since: int, limit: int) -> list[int]:
        p = self.placeholder
        rows = self._query(
            "SELECT later.timestamp - earlier.timestamp FROM status_history later "
            "JOIN status_history earlier ON earlier.order_id = later.order_id "
            f"AND earlier.status = {p} WHERE later.status = {p} AND later.timestamp >= {p} "
            f"ORDER BY later.timestamp DESC LIMIT {p}",
            (int(start), int(end), since, limit),
        )
        return [duration for (duration,) in rows]

    def stuck_orders(self, limit: int = 10) -> list[OrderView]:
        p = self.placeholder
        return self._views(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE status = {STUCK} "
            f"AND order_json IS NOT NULL ORDER BY updated_at, order_id LIMIT {p}",
            (limit,),
        )

    def unplaced_events(self, seen_before: int) -> list[UnplacedEvent]:
        p = self.placeholder
        rows = self._query(
            "SELECT order_id, status, timestamp, topic, partition_number, offset_number "
            "FROM unplaced_events WHERE order_id IN "
            f"(SELECT order_id FROM unplaced_events WHERE seen_at < {p}) "
            "ORDER BY topic, partition_number, offset_number",
            (seen_before,),
        )
        return [
            UnplacedEvent(order_id, Status(status), timestamp, (topic, partition, offset))
            for order_id, status, timestamp, topic, partition, offset in rows
        ]

    def _views(self, sql: str, parameters: Sequence[Any]) -> list[OrderView]:
        """Orders with their histories, read in one transaction so the two agree."""
        with self._transaction(writing=False) as cursor:
            cursor.execute(sql, parameters)
            rows = cursor.fetchall()
            histories = self._histories(cursor, [row[0] for row in rows])
        return [
            OrderView(
                order_id=order_id,
                customer_id=customer_id,
                order=Order.model_validate_json(order_json) if order_json else None,
                placed_at=placed_at,
                status=Status(status),
                history=tuple(sorted(histories.get(order_id, []), key=_progress_order)),
                updated_at=updated_at,
                partition=partition,
            )
            for order_id, customer_id, order_json, placed_at, status, updated_at, partition in rows
        ]

    def _histories(self, cursor: Any, order_ids: list[str]) -> dict[str, list[StatusEntry]]:
        histories: dict[str, list[StatusEntry]] = {}
        for chunk in _chunks(order_ids):
            marks = self._marks(chunk)
            cursor.execute(
                f"SELECT order_id, seq, status, timestamp FROM status_history WHERE order_id IN ({marks})",
                chunk,
            )
            for order_id, seq, status, timestamp in cursor.fetchall():
                histories.setdefault(order_id, []).append(
                    StatusEntry(seq, Status(status), timestamp)
                )
        return histories

    # --- plumbing ----------------------------------------------------------------------------

    def _marks(self, values: Sequence[Any]) -> str:
        """One placeholder per value, for an `IN (...)` list."""
        return ",".join([self.placeholder] * len(values))

    def _begin(self, cursor: Any, writing: bool) -> None:
        """Start a transaction; a writing one holds the database's write lock from its start,
        so two status services on one database never interleave a read-modify-write."""

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction(writing=False) as cursor:
            cursor.execute(sql, parameters)
            return [tuple(row) for row in cursor.fetchall()]

    @contextmanager
    def _transaction(self, writing: bool) -> Iterator[Any]:
        with self._lock:
            cursor = self._db.cursor()
            try:
                self._begin(cursor, writing)
                yield cursor
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
            finally:
                cursor.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _fold(event: OrderPlaced | StatusChanged, order: _Known, changes: _Changes) -> None:
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


def _note_partitions(
    events: Sequence[OrderPlaced | StatusChanged], sources: Sequence[Source], changes: _Changes
) -> None:
    """Where each order was placed: its later events (a stuck mark, a retry) go there too."""
    for event, (_topic, partition, _offset) in zip(events, sources, strict=True):
        if isinstance(event, OrderPlaced):
            changes.partitions.setdefault(event.order_id, partition)


def _set_aside_unplaced(
    events: Sequence[OrderPlaced | StatusChanged],
    sources: Sequence[Source],
    known: dict[str, _Known],
    changes: _Changes,
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


def _remember(order: _Known, status: Status, timestamp: int) -> None:
    """Rebuild what an order's stored history says, without touching its current status."""
    order.stored.add(status)
    if not status.is_error:
        order.reached = max(order.reached or status, status)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _progress_order(entry: StatusEntry) -> tuple[int, int]:
    """A timeline reads in the order things happened: by time, then by step."""
    return (entry.timestamp, int(entry.status))
