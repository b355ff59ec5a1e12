"""What a service commits, and when: one checkpoint for every kind of service.

Each turn the loop asks the checkpoint to commit. It finishes the work whose records are out
(producing.py: in a transaction at once, else once acknowledged), asks the work how far each
partition is finished, and commits those positions by the guarantee's policy, unless its
`Cadence` says it is too soon: a kitchen under transactions in a rush, or a sink, whose
commits to Kafka only show its lag. Handing partitions over and stopping always commit.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Generic, TypeVar

from confluent_kafka import KafkaError, TopicPartition

from pizzashop.observe import tracing
from pizzashop.observe.metrics import ServiceMetrics
from pizzashop.runtime.clients import ConsumerLike, ProducerLike
from pizzashop.runtime.producing import CommitPolicy, OutgoingRecord, Positions

T = TypeVar("T")
Source = tuple[str, int]

# A Kafka transaction per poll batch keeps an order's latency at the broker's round trips, but
# each one costs the broker as much again as the events in it: markers written to every
# partition it touched, every reader woken. In a rush (batches come full, or events come
# faster than RUSH_EVENTS_PER_SECOND) a kitchen service commits once per RUSH_COMMIT_SECONDS
# instead, as Kafka Streams and Quix Streams always do; slower than that, each batch commits
# at once. At 200 orders/s each service sees 200 to 400 events a second.
RUSH_COMMIT_SECONDS = 0.1
RUSH_EVENTS_PER_SECOND = 600
ARRIVALS_OVER_SECONDS = 1.0  # how far back the rate of events looks (exponentially)


@dataclass(frozen=True)
class Cadence:
    """When a checkpoint commits: `seconds` after the last commit began (0: every turn), or
    `in_a_rush` after it while events come fast; every position again after `again` seconds,
    changed or not; and whether a forced commit (partitions going, a stop) waits for the broker."""

    seconds: float = 0.0
    in_a_rush: float = 0.0
    again: float = math.inf
    forced_waits: bool = True


def kitchen_cadence(transactional: bool) -> Cadence:
    """Every batch at once; under transactions, in a rush, the work of an interval."""
    return Cadence(in_a_rush=RUSH_COMMIT_SECONDS) if transactional else Cadence()


class Checkpoint(Generic[T]):
    """Sends a service's records and commits its positions, by its policy and its cadence.

    `finished` gives the offsets up to which each partition's work is done; `idle` the
    partitions with all that was read done, whose commit goes on to the consumer's position.
    """

    def __init__(
        self,
        policy: CommitPolicy[T],
        consumer: ConsumerLike,
        cadence: Cadence,
        finished: Callable[[], dict[Source, int]],
        idle: Callable[[], Collection[Source]],
        metrics: ServiceMetrics | None = None,  # None: its commits are timed elsewhere
        spans: tracing.TicketSpans | None = None,
    ) -> None:
        self._policy, self._consumer, self.cadence = policy, consumer, cadence
        self._finished, self._idle = finished, idle
        self._metrics, self._spans = metrics, spans
        # Records for a piece of work `done`, which is finished once they are out: called for
        # every event, so the policy's own method, with nothing in between.
        self.send: Callable[[Sequence[OutgoingRecord], T | None], None] = policy.send
        self._committed: dict[Source, int] = {}
        self._arrivals = ArrivalRate(ARRIVALS_OVER_SECONDS)
        self._in_a_rush = False  # a full batch (more is waiting), or events coming fast
        self._last_commit = 0.0  # the clock when the last commit began
        self._all_again_at = 0.0
        self._put_off = False

    @property
    def producer(self) -> ProducerLike:
        return self._policy.producer

    def arrived(self, events: int, full_batch: bool, now: float) -> None:
        self._arrivals.note(events, now)
        self._in_a_rush = full_batch or self._arrivals.per_second >= RUSH_EVENTS_PER_SECOND

    def seconds_until_due(self, now: float) -> float | None:
        """How soon a commit put off is due; None when none is."""
        if not self._put_off:
            return None
        return max(0.0, self._last_commit + self._interval() - now)

    def commit(self, now: float, forced: bool = False) -> None:
        """Commit what is finished, if it is time (always when `forced`)."""
        self._policy.finish_acknowledged()
        self._put_off = not forced and now - self._last_commit < self._interval()
        if self._put_off:
            return
        if now - self._all_again_at >= self.cadence.again:
            self._committed, self._all_again_at = {}, now  # in case a commit was lost
        positions = {
            source: offset
            for source, offset in self._positions().items()
            if self._committed.get(source) != offset
        }
        started = time.perf_counter()
        with self._commit_span(positions):
            done = self._policy.commit(positions, forced and self.cadence.forced_waits)
        if done:
            self._committed.update(positions)
            self._last_commit = now
        if done and positions and self._metrics is not None:
            self._metrics.committed(time.perf_counter() - started)

    def _interval(self) -> float:
        return self.cadence.in_a_rush if self._in_a_rush else self.cadence.seconds

    def _positions(self) -> dict[Source, int]:
        """Where an idle partition's work is all finished, its commit goes to the consumer's
        position: past the transaction markers after the last record, which are not records
        but take offsets. Else the group's lag would never read 0 in a quiet shop."""
        offsets = self._finished()
        idle = self._idle()
        if idle:
            held = [TopicPartition(topic, partition) for topic, partition in idle]
            for tp in self._consumer.position(held):
                if tp.error is None and tp.offset > offsets.get((tp.topic, tp.partition), -1):
                    offsets[(tp.topic, tp.partition)] = tp.offset
        return offsets

    def _commit_span(self, positions: Positions) -> AbstractContextManager[None]:
        if self._spans is None or not positions:
            return contextlib.nullcontext()
        return self._spans.commit("commit")

    def settle(self) -> None:
        """Before partitions are handed over: let every acknowledgement arrive."""
        self._policy.settle()

    def forget(self, partitions: Iterable[Source]) -> None:
        """Partitions gone: what was committed for them is no longer this instance's to know."""
        for source in partitions:
            self._committed.pop(source, None)

    def start_over(self, error: KafkaError) -> None:
        """After a Kafka failure: drop what was not committed; the loop redoes it."""
        self._committed = {}
        self._policy.start_over(error)


class ArrivalRate:
    """Events a second, averaged exponentially over about the last `seconds`: steady at a
    steady rate, where the events of one batch come in bunches."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self.per_second = 0.0
        self._noted_at: float | None = None

    def note(self, events: int, now: float) -> None:
        if self._noted_at is not None:
            self.per_second *= math.exp(-(now - self._noted_at) / self._seconds)
        self.per_second += events / self._seconds
        self._noted_at = now
