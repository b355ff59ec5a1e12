"""The shop's pipeline at a glance, for its operator: each stage's orders in the works, orders
per second, stage times and lag, the dead letters and the stuck orders.

A snapshot is computed from the read model (which status each order shows, and when it
reached each one) and from the broker (the consumer groups' lag, the dead-letter topic), so
it holds for any number of service instances and web processes and needs nothing from their
processes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pizzashop.config import Settings
from pizzashop.contract import Status, group_id, now_ms
from pizzashop.kafka.lag import PartitionLag, admin_client, dead_letter_count, group_lag
from pizzashop.readmodel import OrderView
from pizzashop.readmodel.pipeline import PipelineQueries

log = logging.getLogger("pizzashop.operator.pipeline")

RATE_WINDOW_SECONDS = 10.0  # orders per second: over the entries of this many seconds
TIMES_WINDOW_SECONDS = 300.0  # stage times: of the orders that finished a step this recently,
TIMES_SAMPLE = 500  # the latest this many per stage
STUCK_SHOWN = 10
FRESH_FOR = 1.0  # seconds a snapshot serves every viewer before the next is taken


@dataclass(frozen=True)
class Stage:
    """A box of the pipeline, told by the statuses around it."""

    name: str
    service: str | None  # whose consumer group does the work (None: the web app has none)
    works_on: Status | None  # an order showing this waits for the stage or is at it
    done: tuple[Status, ...]  # statuses the stage records for an order it has finished

    @property
    def step(self) -> tuple[Status, Status] | None:
        """The statuses between which an order is at this stage, when it holds orders."""
        return None if self.works_on is None else (self.works_on, self.done[0])


STAGES: tuple[Stage, ...] = (
    Stage("web", None, None, (Status.RECEIVED,)),
    Stage("assemble", "assemble", Status.RECEIVED, (Status.IN_OVEN, Status.INVALID_ORDER)),
    Stage("bake", "bake", Status.IN_OVEN, (Status.OUT_FOR_DELIVERY, Status.CANCELLED)),
    Stage("delivery", "delivery", Status.OUT_FOR_DELIVERY, (Status.DELIVERED,)),
    Stage("status", "status", None, tuple(Status)),  # it records every status
)


@dataclass(frozen=True)
class BrokerFigures:
    lag: dict[str, PartitionLag]  # by service, as `lag.group_lag` reads it
    dead_letters: int


@dataclass(frozen=True)
class StageFigures:
    name: str
    group: str | None  # its consumer group, whose lag is shown (None: the web app has none)
    in_works: int | None  # None: the stage holds no orders (the web app, the status service)
    per_second: float
    p50_ms: int | None  # None: no order finished this stage lately
    p99_ms: int | None
    lag: int | None  # None: no consumer group, or the broker did not answer
    lag_by_topic: dict[str, int]


@dataclass(frozen=True)
class StuckOrder:
    order_id: str
    stage: str | None  # the stage it waits for: the one after the furthest step it reached
    since: int  # ms, when it was marked stuck


@dataclass(frozen=True)
class PipelineSnapshot:
    taken_at: int  # ms
    stages: tuple[StageFigures, ...]
    stuck_count: int
    stuck: tuple[StuckOrder, ...]  # the longest stuck, at most STUCK_SHOWN
    dead_letters: int | None  # None: the broker did not answer
    broker_reachable: bool
    rate_window_seconds: float = RATE_WINDOW_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def take_snapshot(
    read_model: PipelineQueries, broker: BrokerFigures | None, now: int
) -> PipelineSnapshot:
    """The pipeline as the read model and the broker's figures (None: unreachable) show it."""
    on_their_way = read_model.orders_on_their_way()
    reached = read_model.statuses_reached_since(now - int(RATE_WINDOW_SECONDS * 1000))
    stages = tuple(
        _stage_figures(stage, read_model, on_their_way, reached, broker, now) for stage in STAGES
    )
    return PipelineSnapshot(
        taken_at=now,
        stages=stages,
        stuck_count=on_their_way.get(Status.STUCK, 0),
        stuck=tuple(_stuck(view) for view in read_model.stuck_orders(STUCK_SHOWN)),
        dead_letters=None if broker is None else broker.dead_letters,
        broker_reachable=broker is not None,
    )


def _stage_figures(
    stage: Stage,
    read_model: PipelineQueries,
    on_their_way: Mapping[Status, int],
    reached: Mapping[Status, int],
    broker: BrokerFigures | None,
    now: int,
) -> StageFigures:
    durations = _stage_times(stage, read_model, now)
    lag = None if broker is None or stage.service is None else broker.lag.get(stage.service, {})
    return StageFigures(
        name=stage.name,
        group=None if stage.service is None else group_id(stage.service),
        in_works=None if stage.works_on is None else on_their_way.get(stage.works_on, 0),
        per_second=sum(reached.get(s, 0) for s in stage.done) / RATE_WINDOW_SECONDS,
        p50_ms=percentile(durations, 0.50),
        p99_ms=percentile(durations, 0.99),
        lag=None if lag is None else sum(lag.values()),
        lag_by_topic={} if lag is None else _by_topic(lag),
    )


def _stage_times(stage: Stage, read_model: PipelineQueries, now: int) -> list[int]:
    if stage.step is None:
        return []
    since = now - int(TIMES_WINDOW_SECONDS * 1000)
    return read_model.step_durations(*stage.step, since=since, limit=TIMES_SAMPLE)


def _by_topic(lag: PartitionLag) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (topic, _partition), behind in sorted(lag.items()):
        totals[topic] = totals.get(topic, 0) + behind
    return totals


def _stuck(view: OrderView) -> StuckOrder:
    steps = [entry.status for entry in view.history if not entry.status.is_error]
    furthest = max(steps, default=Status.RECEIVED)
    waits_for = next((stage.name for stage in STAGES if stage.works_on is furthest), None)
    return StuckOrder(view.order_id, waits_for, view.updated_at)


def percentile(values: Sequence[int], fraction: float) -> int | None:
    """The nearest-rank percentile: the smallest value with `fraction` of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


# --- reading the broker, and sharing snapshots between viewers -------------------------------


class BrokerReader:
    """The broker's figures through one admin client, or None when the broker does not answer."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin: AdminClient | None = None  # made on first use: a page may never be opened

    def __call__(self) -> BrokerFigures | None:
        if self._admin is None:
            self._admin = admin_client(self._settings)
        try:
            lag = group_lag(self._settings, self._admin)
            return BrokerFigures(lag, dead_letter_count(self._settings, self._admin))
        except KafkaException as e:
            log.debug("The broker did not answer for the pipeline page: %s", e)
            return None


class PipelineWatch:
    """Snapshots for every viewer at once: one is taken at most every `fresh_for` seconds.

    `snapshot` blocks on the database and the broker: call it off the event loop.
    """

    def __init__(
        self,
        read_model: PipelineQueries,
        read_broker: Callable[[], BrokerFigures | None],
        fresh_for: float = FRESH_FOR,
    ) -> None:
        self._read_model = read_model
        self._read_broker = read_broker
        self._fresh_for = fresh_for
        self._lock = threading.Lock()  # held while a snapshot is taken
        self._last: PipelineSnapshot | None = None
        self._taken_at = 0.0

    def snapshot(self) -> PipelineSnapshot:
        last = self._last
        # While another viewer takes the next one (a broker away takes seconds), the last
        # serves: viewers never pile up waiting, each holding a thread of the web server.
        if not self._lock.acquire(blocking=last is None):
            assert last is not None  # only a non-blocking acquire fails
            return last
        try:
            if self._last is None or time.monotonic() - self._taken_at >= self._fresh_for:
                self._last = take_snapshot(self._read_model, self._read_broker(), now_ms())
                self._taken_at = time.monotonic()
            return self._last
        finally:
            self._lock.release()
