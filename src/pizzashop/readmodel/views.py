"""The orders as the web app and the CLI read them: one order, a customer's, the newest, and
what changed since a live stream last looked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pizzashop.contract import Order, Status
from pizzashop.readmodel import OrderView, StatusEntry
from pizzashop.readmodel.database import (
    VIEW_COLUMNS,
    Database,
    chunks,
    marks,
    query,
    stored_offsets,
)
from pizzashop.readmodel.pantry import stored_stock


class OrderViews:
    def __init__(self, database: Database) -> None:
        self._database = database

    def get_order(self, order_id: str) -> OrderView | None:
        p = self._database.placeholder
        views = read_views(
            self._database, f"SELECT {VIEW_COLUMNS} FROM orders WHERE order_id = {p}", (order_id,)
        )
        return views[0] if views else None

    def orders_of(self, customer_id: str, limit: int = 50) -> list[OrderView]:
        """A customer's orders, newest first."""
        p = self._database.placeholder
        return read_views(
            self._database,
            f"SELECT {VIEW_COLUMNS} FROM orders WHERE customer_id = {p} "
            f"ORDER BY placed_at DESC, order_id LIMIT {p}",
            (customer_id, limit),
        )

    def recent_orders(self, limit: int = 50) -> list[OrderView]:
        """All customers' orders, newest first."""
        p = self._database.placeholder
        return read_views(
            self._database,
            f"SELECT {VIEW_COLUMNS} FROM orders ORDER BY updated_at DESC, order_id LIMIT {p}",
            (limit,),
        )

    def every_order(self) -> list[OrderView]:
        """All orders, placed or only seen in status events, by id (to compare two models)."""
        return read_views(self._database, f"SELECT {VIEW_COLUMNS} FROM orders ORDER BY order_id")

    def history_after(self, order_id: str, seq: int) -> list[StatusEntry]:
        """Status entries of one order stored after `seq` (for live streams that reconnect)."""
        p = self._database.placeholder
        rows = query(
            self._database,
            f"SELECT seq, status, timestamp FROM status_history WHERE order_id = {p} AND seq > {p} "
            "ORDER BY seq",
            (order_id, seq),
        )
        return [StatusEntry(seq, Status(status), timestamp) for seq, status, timestamp in rows]

    def last_history_seq(self) -> int:
        """The seq of the last status entry stored (0: none)."""
        rows = query(self._database, "SELECT COALESCE(MAX(seq), 0) FROM status_history")
        return int(rows[0][0])

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, str]]:
        """(seq, order id) of the first `limit` status entries stored after `seq`, in seq
        order, whatever their order: how a web process follows every change with one query."""
        p = self._database.placeholder
        rows = query(
            self._database,
            f"SELECT seq, order_id FROM status_history WHERE seq > {p} ORDER BY seq LIMIT {p}",
            (seq, limit),
        )
        return [(int(seq), str(order_id)) for seq, order_id in rows]

    def read_up_to(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the next offset the status service reads: every order placed
        before it is here."""
        return stored_offsets(self._database)

    def stock(self) -> dict[str, int]:
        """Each ingredient's level as the pantry last told it; one never moved is absent (its
        starting stock: `stock_levels` in pantry.py)."""
        return stored_stock(self._database)


def read_views(database: Database, sql: str, parameters: Sequence[Any] = ()) -> list[OrderView]:
    """Orders with their histories, read in one transaction so the two agree."""
    with database.transaction(writing=False) as cursor:
        cursor.execute(sql, parameters)
        rows = cursor.fetchall()
        histories = _histories(database, cursor, [row[0] for row in rows])
    return [_view_of(row, histories.get(row[0], [])) for row in rows]


def _view_of(row: Sequence[Any], history: list[StatusEntry]) -> OrderView:
    """One order from its row (VIEW_COLUMNS) and its history."""
    order_id, customer_id, order_json, placed_at, status, updated_at, partition, sold_out = row
    return OrderView(
        order_id=order_id,
        customer_id=customer_id,
        order=Order.model_validate_json(order_json) if order_json else None,
        placed_at=placed_at,
        status=Status(status),
        history=tuple(sorted(history, key=_progress_order)),
        updated_at=updated_at,
        partition=partition,
        sold_out=sold_out,
    )


def _histories(
    database: Database, cursor: Any, order_ids: list[str]
) -> dict[str, list[StatusEntry]]:
    histories: dict[str, list[StatusEntry]] = {}
    for chunk in chunks(order_ids):
        cursor.execute(
            "SELECT order_id, seq, status, timestamp FROM status_history "
            f"WHERE order_id IN ({marks(database, chunk)})",
            chunk,
        )
        for order_id, seq, status, timestamp in cursor.fetchall():
            histories.setdefault(order_id, []).append(StatusEntry(seq, Status(status), timestamp))
    return histories


def _progress_order(entry: StatusEntry) -> tuple[int, int]:
    """A timeline reads in the order things happened: by time, then by step."""
    return (entry.timestamp, int(entry.status))
