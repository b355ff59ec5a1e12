"""status: the query side. Materialises every order and its status history into the read model,
and watches for orders that stopped moving, and for status events of orders never placed.

Each batch is written in one database transaction together with the offsets it came from,
so the read model applies every event once, whatever the processing guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.contract import SERVICES, Event, OrderPlaced, Status, StatusChanged, now_ms
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.observe.metrics import StageClock, count_orders_by_status
from pizzashop.readmodel import Source
from pizzashop.readmodel.store import open_readmodel
from pizzashop.readmodel.watchdog import WatchdogQueries
from pizzashop.readmodel.writer import OrderWriter, apply_to
from pizzashop.service import Routed, SinkService

log = logging.getLogger("pizzashop.status")

WATCHDOG_CHECKS_PER_PERIOD = 4
NO_STAGE_CLOCK = StageClock(enabled=False)


def materialise(
    writer: OrderWriter,
    events: Sequence[Event],
    offsets: Mapping[tuple[str, int], int],
    sources: Sequence[Source] | None = None,
    stages: StageClock = NO_STAGE_CLOCK,
) -> None:
    for event in apply_to(writer, events, offsets, sources):
        stages.saw(event)
        status = Status.RECEIVED if isinstance(event, OrderPlaced) else event.status
        log.info(
            "Order '%s' status updated: %s (%d)",
            event.order_id,
            status.text,
            status,
            extra={"order_id": event.order_id},
        )


def orders_to_mark_stuck(watchdog: WatchdogQueries, now: int, stuck_after_ms: int) -> list[Routed]:
    """A STUCK status for every order that is not final and has not moved for too long.

    The marks go out through `pizza-status` like every other status, to the partition the
    order was placed on; each carries `now`, so the read model can tell a new stall from an
    old mark replayed.
    """
    stalled = watchdog.stalled_orders(not_moved_since=now - stuck_after_ms)
    for view in stalled:
        log.warning(
            "Order '%s' has not moved for %ds (status %d): marking it stuck",
            view.order_id,
            (now - view.updated_at) // 1000,
            view.status,
        )
    return [
        Routed(StatusChanged(view.order_id, Status.STUCK, now), view.partition_to_send_to)
        for view in stalled
    ]


def unknown_orders_to_park(watchdog: WatchdogQueries, now: int, wait_ms: int) -> list[DeadLetter]:
    """The status events of every order that was still not placed `wait_ms` after the first of
    them arrived: bound for the dead-letter topic, each with where it was read from."""
    unplaced = watchdog.unplaced_events(seen_before=now - wait_ms)
    for order_id in sorted({e.order_id for e in unplaced}):
        log.warning("Order '%s' was never placed: parking its status events", order_id)
    reason = f"unknown order: not placed within {wait_ms // 1000}s of its first status event"
    return [
        DeadLetter(
            *e.source,
            key=e.order_id.encode(),
            value=contract.encode(StatusChanged(e.order_id, e.status, e.timestamp)).value,
            error=reason,
        )
        for e in unplaced
    ]


def watch(watchdog: WatchdogQueries, stuck_after_ms: int) -> list[Routed | DeadLetter]:
    now = now_ms()
    return [
        *orders_to_mark_stuck(watchdog, now, stuck_after_ms),
        *unknown_orders_to_park(watchdog, now, stuck_after_ms),
    ]


def build(settings: Settings) -> SinkService:
    # Followed only when the loop asks (`switched`), so no batch read for the old generation
    # is written into the new one.
    read_model = open_readmodel(settings.readmodel_url)
    writer = read_model.writer
    stuck_after_ms = int(settings.stuck_after * 1000)
    stages = StageClock(settings.metrics)
    if settings.metrics:
        count_orders_by_status(read_model.pipeline.orders_by_status)
    return SinkService(
        name="status",
        consumes=SERVICES["status"],
        materialise=lambda events, offsets, sources: materialise(
            writer, events, offsets, sources, stages
        ),
        stored_offsets=writer.stored_offsets,
        tick=lambda: watch(read_model.watchdog, stuck_after_ms),
        tick_seconds=settings.stuck_after / WATCHDOG_CHECKS_PER_PERIOD,
        parked=lambda letters: writer.forget_unplaced(d.key.decode() for d in letters if d.key),
        switched=read_model.database.switched,
        close=read_model.close,
    )
