"""The status service's watchdog reads: orders that stopped moving, and the status events of
orders never placed (the writer drops those once they are parked: `forget_unplaced`)."""

from __future__ import annotations

from pizzashop.contract import Status
from pizzashop.readmodel import OrderView, UnplacedEvent
from pizzashop.readmodel.database import NOT_MOVING, VIEW_COLUMNS, Database, query
from pizzashop.readmodel.views import read_views


class WatchdogQueries:
    def __init__(self, database: Database) -> None:
        self._database = database

    def stalled_orders(self, not_moved_since: int) -> list[OrderView]:
        """Orders not final and not moved since the given time (ms)."""
        p = self._database.placeholder
        return read_views(
            self._database,
            f"SELECT {VIEW_COLUMNS} FROM orders WHERE status NOT IN ({NOT_MOVING}) AND updated_at < {p} "
            "AND order_json IS NOT NULL ORDER BY updated_at",
            (not_moved_since,),
        )

    def unplaced_events(self, seen_before: int) -> list[UnplacedEvent]:
        """Every kept-aside event of the orders not placed although first seen before `seen_before` (ms
        on the status service's clock): orders that, by now, are unknown."""
        p = self._database.placeholder
        rows = query(
            self._database,
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
