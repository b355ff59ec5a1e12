"""The read model in SQL, written once for SQLite and PostgreSQL.

A subclass gives a DB-API connection, its placeholder style and its schema; everything
else, above all how a batch of events is applied, lives here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged
from pizzashop.readmodel import Offsets, OrderView, StatusEntry, status_after

ORDER_COLUMNS = "order_id, customer_id, order_json, placed_at, status, updated_at"


@dataclass
class _Current:
    status: Status | None
    updated_at: int


class SqlReadModel:
    placeholder = "?"

    def __init__(self, connection: Any) -> None:
        self._db = connection
        self._lock = threading.Lock()  # one connection, shared by the threads of a web server

    # --- writing ---------------------------------------------------------------------------

    def apply(self, events: Sequence[OrderPlaced | StatusChanged], offsets: Offsets) -> None:
        with self._transaction() as cursor:
            current = self._current_statuses(cursor, {e.order_id for e in events})
            placed: dict[str, OrderPlaced] = {}
            for event in events:
                status = Status.RECEIVED if isinstance(event, OrderPlaced) else event.status
                timestamp = event.timestamp or 0
                if isinstance(event, OrderPlaced):
                    placed.setdefault(event.order_id, event)
                if self._record_history(cursor, event.order_id, status, timestamp):
                    entry = current.setdefault(event.order_id, _Current(None, 0))
                    entry.status = status_after(entry.status, status)
                    entry.updated_at = max(entry.updated_at, timestamp)
            self._write_orders(cursor, current, placed)
            self._write_offsets(cursor, offsets)

    def _current_statuses(self, cursor: Any, order_ids: set[str]) -> dict[str, _Current]:
        current: dict[str, _Current] = {}
        ids = list(order_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join([self.placeholder] * len(chunk))
            cursor.execute(f"SELECT order_id, status, updated_at FROM orders WHERE order_id IN ({marks})", chunk)
            for order_id, status, updated_at in cursor.fetchall():
                current[order_id] = _Current(Status(status), updated_at)
        return current

    def _record_history(self, cursor: Any, order_id: str, status: Status, timestamp: int) -> bool:
        """Store one status of one order; False if it was stored before (a replay)."""
        p = self.placeholder
        cursor.execute(
            f"INSERT INTO status_history (order_id, status, timestamp) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (order_id, status) DO NOTHING",
            (order_id, int(status), timestamp),
        )
        return bool(cursor.rowcount == 1)

    def _write_orders(self, cursor: Any, current: dict[str, _Current],
                      placed: dict[str, OrderPlaced]) -> None:
        p = self.placeholder
        rows = []
        for order_id, entry in current.items():
            if entry.status is None:
                continue
            event = placed.get(order_id)
            order_json = event.order.model_dump_json() if event else None
            rows.append((order_id, event.order.customer_id if event else None, order_json,
                         event.timestamp if event else None, int(entry.status), entry.updated_at))
        cursor.executemany(
            f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({p}, {p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, "
            "updated_at = excluded.updated_at, "
            "customer_id = COALESCE(orders.customer_id, excluded.customer_id), "
            "order_json = COALESCE(orders.order_json, excluded.order_json), "
            "placed_at = COALESCE(orders.placed_at, excluded.placed_at)",
            rows,
        )

    def _write_offsets(self, cursor: Any, offsets: Offsets) -> None:
        p = self.placeholder
        cursor.executemany(
            f"INSERT INTO applied_offsets (topic, partition_number, next_offset) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (topic, partition_number) DO UPDATE SET next_offset = excluded.next_offset",
            [(topic, partition, offset) for (topic, partition), offset in offsets.items()],
        )

    # --- reading ---------------------------------------------------------------------------

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        rows = self._query("SELECT topic, partition_number, next_offset FROM applied_offsets")
        return {(topic, partition): offset for topic, partition, offset in rows}

    def get_order(self, order_id: str) -> OrderView | None:
        p = self.placeholder
        rows = self._query(f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = {p}", (order_id,))
        return self._views(rows)[0] if rows else None

    def orders_of(self, customer_id: str, limit: int = 50) -> list[OrderView]:
        p = self.placeholder
        return self._views(self._query(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE customer_id = {p} "
            f"ORDER BY placed_at DESC, order_id LIMIT {p}", (customer_id, limit)))

    def recent_orders(self, limit: int = 50) -> list[OrderView]:
        p = self.placeholder
        return self._views(self._query(
            f"SELECT {ORDER_COLUMNS} FROM orders ORDER BY updated_at DESC, order_id LIMIT {p}", (limit,)))

    def history_after(self, order_id: str, seq: int) -> list[StatusEntry]:
        p = self.placeholder
        rows = self._query(
            f"SELECT seq, status, timestamp FROM status_history WHERE order_id = {p} AND seq > {p} "
            "ORDER BY seq", (order_id, seq))
        return [StatusEntry(seq, Status(status), timestamp) for seq, status, timestamp in rows]

    def stalled_orders(self, not_moved_since: int) -> list[OrderView]:
        p = self.placeholder
        finals = ",".join(str(int(s)) for s in Status if s.is_final or s is Status.STUCK)
        return self._views(self._query(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE status NOT IN ({finals}) AND updated_at < {p} "
            "ORDER BY updated_at", (not_moved_since,)))

    def _views(self, rows: list[tuple[Any, ...]]) -> list[OrderView]:
        if not rows:
            return []
        histories = self._histories([row[0] for row in rows])
        return [
            OrderView(
                order_id=order_id, customer_id=customer_id,
                order=Order.model_validate_json(order_json) if order_json else None,
                placed_at=placed_at, status=Status(status),
                history=tuple(sorted(histories.get(order_id, []), key=_progress_order)),
                updated_at=updated_at,
            )
            for order_id, customer_id, order_json, placed_at, status, updated_at in rows
        ]

    def _histories(self, order_ids: list[str]) -> dict[str, list[StatusEntry]]:
        marks = ",".join([self.placeholder] * len(order_ids))
        histories: dict[str, list[StatusEntry]] = {}
        rows = self._query(
            f"SELECT order_id, seq, status, timestamp FROM status_history WHERE order_id IN ({marks})",
            tuple(order_ids))
        for order_id, seq, status, timestamp in rows:
            histories.setdefault(order_id, []).append(StatusEntry(seq, Status(status), timestamp))
        return histories

    # --- plumbing ----------------------------------------------------------------------------

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction() as cursor:
            cursor.execute(sql, parameters)
            return [tuple(row) for row in cursor.fetchall()]

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            cursor = self._db.cursor()
            try:
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


def _progress_order(entry: StatusEntry) -> tuple[int, int]:
    """A timeline reads in the order things happened: by time, then by step."""
    return (entry.timestamp, int(entry.status))
