"""The figures of the shop's pipeline, as the operator's page, the metrics and `pizzashop
status` read them: how many orders are where, how fast they move, which are stuck."""

from __future__ import annotations

from pizzashop.contract import Status
from pizzashop.readmodel import OrderView
from pizzashop.readmodel.database import NOT_MOVING, STUCK, VIEW_COLUMNS, Database, query
from pizzashop.readmodel.views import read_views


class PipelineQueries:
    def __init__(self, database: Database) -> None:
        self._database = database

    def orders_by_status(self) -> dict[Status, int]:
        """How many orders are at each status now (placed orders only)."""
        rows = query(
            self._database,
            "SELECT status, COUNT(*) FROM orders WHERE order_json IS NOT NULL GROUP BY status",
        )
        return {Status(status): count for status, count in rows}

    def orders_on_their_way(self) -> dict[Status, int]:
        """How many placed orders show each status that is not final (stuck included)."""
        # Two queries, each shaped like a partial index, so only open orders are read.
        moving = query(
            self._database,
            f"SELECT status, COUNT(*) FROM orders WHERE status NOT IN ({NOT_MOVING}) "
            "AND order_json IS NOT NULL GROUP BY status",
        )
        stuck = query(
            self._database,
            f"SELECT COUNT(*) FROM orders WHERE status = {STUCK} AND order_json IS NOT NULL",
        )
        counts = {Status(status): count for status, count in moving}
        return {**counts, Status.STUCK: stuck[0][0]} if stuck[0][0] else counts

    def statuses_reached_since(self, since: int) -> dict[Status, int]:
        """How many status entries of each status were reached at or after `since` (ms)."""
        p = self._database.placeholder
        rows = query(
            self._database,
            f"SELECT status, COUNT(*) FROM status_history WHERE timestamp >= {p} GROUP BY status",
            (since,),
        )
        return {Status(status): count for status, count in rows}

    def step_durations(self, start: Status, end: Status, since: int, limit: int) -> list[int]:
        """Milliseconds from `start` to `end`, for the latest `limit` orders that reached `end`
        at or after `since` (ms): a bounded window, read through an index on the timestamp."""
        p = self._database.placeholder
        rows = query(
            self._database,
            "SELECT later.timestamp - earlier.timestamp FROM status_history later "
            "JOIN status_history earlier ON earlier.order_id = later.order_id "
            f"AND earlier.status = {p} WHERE later.status = {p} AND later.timestamp >= {p} "
            f"ORDER BY later.timestamp DESC LIMIT {p}",
            (int(start), int(end), since, limit),
        )
        return [duration for (duration,) in rows]

    def stuck_orders(self, limit: int = 10) -> list[OrderView]:
        """Orders marked stuck and not moved on since, longest stuck first."""
        p = self._database.placeholder
        return read_views(
            self._database,
            f"SELECT {VIEW_COLUMNS} FROM orders WHERE status = {STUCK} "
            f"AND order_json IS NOT NULL ORDER BY updated_at, order_id LIMIT {p}",
            (limit,),
        )
