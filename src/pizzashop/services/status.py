"""status: the query side. Materialises every order and its status history into the read model,
and watches for orders that stopped moving.

Each batch is written in one database transaction together with the offsets it came from,
so the read model applies every event once, whatever the processing guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pizzashop.config import Settings
from pizzashop.contract import Event, OrderPlaced, Status, StatusChanged, Topic, now_ms
from pizzashop.readmodel import ReadModel, open_readmodel
from pizzashop.runtime import Service

log = logging.getLogger("pizzashop.status")

WATCHDOG_CHECKS_PER_PERIOD = 4


def materialise(read_model: ReadModel, events: Sequence[Event], offsets: Mapping[tuple[str, int], int]) -> None:
    updates = [e for e in events if isinstance(e, (OrderPlaced, StatusChanged))]
    read_model.apply(updates, offsets)
    for event in updates:
        status = Status.RECEIVED if isinstance(event, OrderPlaced) else event.status
        log.info("Order '%s' status updated: %d (%s)", event.order_id, status, status.text)


def orders_to_mark_stuck(read_model: ReadModel, now: int, stuck_after_ms: int) -> list[StatusChanged]:
    """A STUCK status for every order that is not final and has not moved for too long.

    The marks go out through `pizza-status` like every other status; each carries `now`, so
    the read model can tell a new stall from an old mark replayed.
    """
    stalled = read_model.stalled_orders(not_moved_since=now - stuck_after_ms)
    for view in stalled:
        log.warning("Order '%s' has not moved for %ds (status %d): marking it stuck",
                    view.order_id, (now - view.updated_at) // 1000, view.status)
    return [StatusChanged(view.order_id, Status.STUCK, now) for view in stalled]


def build(settings: Settings) -> Service:
    read_model = open_readmodel(settings.readmodel_url)
    stuck_after_ms = int(settings.stuck_after * 1000)
    return Service(
        name="status",
        consumes=(Topic.ORDERED, Topic.STATUS),
        materialise=lambda events, offsets: materialise(read_model, events, offsets),
        stored_offsets=read_model.stored_offsets,
        tick=lambda: orders_to_mark_stuck(read_model, now_ms(), stuck_after_ms),
        tick_seconds=settings.stuck_after / WATCHDOG_CHECKS_PER_PERIOD,
        close=read_model.close,
    )
