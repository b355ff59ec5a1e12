"""The shop's Prometheus metrics, each defined once: name, help text and labels.

Every process has its own registry (prometheus-client's default) and serves it on /metrics.
With `PIZZASHOP_METRICS=false` nothing is counted: the loops are handed `ServiceMetrics`
that are switched off, so the bench can show what counting costs.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pizzashop.contract import OrderPlaced, Status, StatusChanged

log = logging.getLogger("pizzashop.observe")

# Handlers take microseconds, commits milliseconds, stages of an order seconds or minutes.
FAST_BUCKETS = (0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

EVENTS_CONSUMED = Counter(
    "pizzashop_events_consumed", "Records a service consumed", ["service", "topic"]
)
EVENTS_PRODUCED = Counter(
    "pizzashop_events_produced", "Records a service produced", ["service", "topic"]
)
HANDLER_DURATION = Histogram(
    "pizzashop_handler_duration_seconds",
    "Time a service's handler took per event, the mean over each turn's events",
    ["service"],
    buckets=FAST_BUCKETS,
)
COMMIT_DURATION = Histogram(
    "pizzashop_commit_duration_seconds",
    "Time to commit a turn's work: a Kafka transaction under exactly-once, the offsets under "
    "at-least-once, a read-model transaction for the status service",
    ["service"],
    buckets=COMMIT_BUCKETS,
)
ORDERS_IN_THE_WORKS = Gauge(
    "pizzashop_orders_in_the_works",
    "Order events a service has taken and not finished",
    ["service"],
)
PAUSED_PARTITIONS = Gauge(
    "pizzashop_paused_partitions", "Partitions paused while the kitchen is full", ["service"]
)
CONSUMER_LAG = Gauge(
    "pizzashop_consumer_lag_records",
    "Records in a partition the service has not read yet",
    ["service", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "pizzashop_dead_letters", "Records a service parked in the dead-letter topic", ["service"]
)
START_OVERS = Counter(
    "pizzashop_start_overs",
    "Times a service dropped its uncommitted work after a Kafka failure and started over",
    ["service"],
)
PART_RESTARTS = Counter(
    "pizzashop_part_restarts", "Times `pizzashop up` restarted a part that exited", ["part"]
)
STAGE_DURATION = Histogram(
    "pizzashop_stage_duration_seconds",
    "Time an order took from one step to the next, as the status service saw the events",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "pizzashop_http_requests", "Requests the web app answered", ["route", "method", "code"]
)
HTTP_DURATION = Histogram(
    "pizzashop_http_request_duration_seconds",
    "Time the web app took to answer (until the first byte for live streams)",
    ["route", "method"],
    buckets=COMMIT_BUCKETS,
)


class ServiceMetrics:
    """One service's metrics, its label set once; every call does nothing when switched off.

    What happens per event is tallied in plain Python and handed to prometheus-client once a
    turn (`flush`): each of its updates takes a lock, about 3 µs, as much as a handler."""

    def __init__(self, service: str, enabled: bool = True) -> None:
        self.service, self.enabled = service, enabled
        self._handler = HANDLER_DURATION.labels(service)
        self._commit = COMMIT_DURATION.labels(service)
        self._in_the_works = ORDERS_IN_THE_WORKS.labels(service)
        self._paused = PAUSED_PARTITIONS.labels(service)
        self._lag_shown: set[tuple[str, int]] = set()
        self._consumed: Tally[str] = Tally()
        self._produced: Tally[str] = Tally()
        self._handled, self._handler_seconds = 0, 0.0

    def consumed(self, topics: Iterable[str]) -> None:
        if self.enabled:
            self._consumed.update(topics)

    def produced(self, topics: Iterable[str]) -> None:
        if self.enabled:
            self._produced.update(topics)

    def handled(self, seconds: float) -> None:
        self._handled += 1
        self._handler_seconds += seconds

    def flush(self) -> None:
        """Hand the turn's tallies to prometheus-client."""
        if not self.enabled:
            return
        for topic, count in self._consumed.items():
            EVENTS_CONSUMED.labels(self.service, topic).inc(count)
        for topic, count in self._produced.items():
            EVENTS_PRODUCED.labels(self.service, topic).inc(count)
        if self._handled:
            self._handler.observe(self._handler_seconds / self._handled)
        self._consumed.clear()
        self._produced.clear()
        self._handled, self._handler_seconds = 0, 0.0

    def committed(self, seconds: float) -> None:
        if self.enabled:
            self._commit.observe(seconds)

    def in_the_works(self, orders: int, paused_partitions: int) -> None:
        if self.enabled:
            self._in_the_works.set(orders)
            self._paused.set(paused_partitions)

    def dead_lettered(self, count: int = 1) -> None:
        if self.enabled and count:
            DEAD_LETTERS.labels(self.service).inc(count)

    def started_over(self) -> None:
        if self.enabled:
            START_OVERS.labels(self.service).inc()

    def lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """The lag of the partitions it holds now; those it gave up disappear."""
        if not self.enabled:
            return
        for topic, partition in self._lag_shown - lag.keys():
            CONSUMER_LAG.remove(self.service, topic, str(partition))
        for (topic, partition), records in lag.items():
            CONSUMER_LAG.labels(self.service, topic, str(partition)).set(records)
        self._lag_shown = set(lag)


# The step an order reaches at the end of each stage, and the step it leaves from.
STAGES: dict[Status, tuple[str, Status]] = {
    Status.IN_OVEN: ("assemble", Status.RECEIVED),
    Status.OUT_FOR_DELIVERY: ("bake", Status.IN_OVEN),
    Status.DELIVERED: ("delivery", Status.OUT_FOR_DELIVERY),
}
STAGE_CLOCK_ORDERS = 100_000  # orders on their way it keeps the last step of (~150 bytes each)


class StageClock:
    """Times each order's stages from the events the status service applies: placed -> 200 is
    `assemble`, 200 -> 300 `bake`, 300 -> 400 `delivery`. Event times are the producers'
    clocks; a stage whose first step it did not see (before a restart) is not timed."""

    def __init__(self, enabled: bool = True, orders: int = STAGE_CLOCK_ORDERS) -> None:
        self.enabled, self._orders = enabled, orders
        self._last_step: OrderedDict[str, tuple[Status, int]] = OrderedDict()

    def saw(self, event: OrderPlaced | StatusChanged) -> None:
        if not self.enabled:
            return
        if isinstance(event, OrderPlaced):
            self._remember(event.order_id, Status.RECEIVED, event.timestamp)
        elif event.status in STAGES and event.timestamp is not None:
            self._time_stage(event.order_id, event.status, event.timestamp)

    def _time_stage(self, order_id: str, reached: Status, at: int) -> None:
        stage, left_from = STAGES[reached]
        last = self._last_step.pop(order_id, None)
        if last is not None and last[0] is left_from:
            STAGE_DURATION.labels(stage).observe(max(0, at - last[1]) / 1000)
        if not reached.is_final:
            self._remember(order_id, reached, at)

    def _remember(self, order_id: str, step: Status, at: int | None) -> None:
        if at is None:
            return
        self._last_step[order_id] = (step, at)
        self._last_step.move_to_end(order_id)
        if len(self._last_step) > self._orders:
            self._last_step.popitem(last=False)


class OrdersByStatus(Collector):
    """`pizzashop_orders{status}`: counted in the read model when scraped, so always its truth.
    One per process; the status service gives it the count (others have none to give)."""

    def __init__(self) -> None:
        self.count: Callable[[], Mapping[Status, int]] | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # known only once counted; registering must not query the read model

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.count is None:
            return
        try:
            counts = self.count()
        except Exception as e:  # any database's error: the other metrics must still be served
            log.warning("Orders by status not counted: the read model did not answer (%s)", e)
            return
        family = GaugeMetricFamily("pizzashop_orders", "Orders at each status", labels=["status"])
        for status in Status:
            family.add_metric([str(int(status))], counts.get(status, 0))
        yield family


ORDERS_BY_STATUS = OrdersByStatus()
REGISTRY.register(ORDERS_BY_STATUS)


def count_orders_by_status(count: Callable[[], Mapping[Status, int]]) -> None:
    ORDERS_BY_STATUS.count = count
