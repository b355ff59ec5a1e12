"""Running a kitchen service (assemble, bake, delivery): every event through the kitchen and
the service's handler, its outputs to the input's partition number, committed by the
guarantee's policy (producing.py) up to the last event whose outputs are out."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from confluent_kafka import Message, TopicPartition

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.kafka.topics import PIPELINE_TOPIC_NAMES, create_state_topic, shared_partition_count
from pizzashop.observe import tracing
from pizzashop.runtime.changelog import (
    ServiceState,
    Waiting,
    changelog_value,
    kept_in_changelog,
    read_changelog,
    read_handled,
)
from pizzashop.runtime.deadletters import dead_letter_of, dead_letter_record
from pizzashop.runtime.kitchen import Kitchen, Ticket
from pizzashop.runtime.loop import IDLE_POLL_SECONDS, OUTPUT_TOPIC_NAMES, ServiceLoop, ticket_of
from pizzashop.runtime.problems import KAFKA_STEP_TIMEOUT
from pizzashop.runtime.producing import OutgoingRecord, Positions
from pizzashop.service import NOTHING_TO_DO, Expiry, KitchenService, Work

log = logging.getLogger("pizzashop.runtime")

# A Kafka transaction per poll batch keeps an order's latency at the broker's round trips, but
# each one costs the broker as much again as the events in it: markers written to every
# partition it touched, every reader woken. In a rush (batches come full, or events come
# faster than RUSH_EVENTS_PER_SECOND) a kitchen service commits once per RUSH_COMMIT_SECONDS
# instead, as Kafka Streams and Quix Streams always do; slower than that, each batch commits
# at once. At 200 orders/s each service sees 200 to 400 events a second.
RUSH_COMMIT_SECONDS = 0.1
RUSH_EVENTS_PER_SECOND = 600
ARRIVALS_OVER_SECONDS = 1.0  # how far back the rate of events looks (exponentially)

# How often the state is looked after (handled orders forgotten, overdue entries settled).
STATE_CHECK_SECONDS = 60.0
MIN_STATE_CHECK_SECONDS = 0.1


class KitchenLoop(ServiceLoop):
    def __init__(self, service: KitchenService, settings: Settings) -> None:
        super().__init__(service.name, [str(t) for t in service.consumes], settings)
        self.service = service
        # Outputs and offsets in Kafka transactions under exactly_once (producing.py).
        self.transactional = self.read_committed
        interrupting = frozenset(str(topic) for topic in service.interrupting)
        self.kitchen = Kitchen(settings.capacity, interrupting)
        self.paused = False  # its partitions, while the kitchen is full
        self._state = ServiceState(int(settings.remember_orders_for * 1000))
        self._committed: dict[tuple[str, int], int] = {}
        self._unacknowledged: dict[int, int] = {}  # id(ticket) -> its records not yet acknowledged
        self._acknowledged: list[Ticket] = []  # every record out: finished at the next commit
        self._next_state_check = 0.0
        self._arrivals = ArrivalRate(ARRIVALS_OVER_SECONDS)
        self._in_a_rush = False  # a full batch (more is waiting), or events coming fast
        self._last_commit = 0.0  # time.monotonic() when the last commit began
        self._commit_put_off = False
        self._spans = tracing.TicketSpans(self.name) if tracing.enabled() else None

    @property
    def state_topic(self) -> str:
        return contract.state_topic(self.name)

    def connect(self) -> None:
        self._check_topics()
        super().connect()

    def _check_topics(self) -> None:
        """Wait for the pipeline's topics; refuse to start (TopicsNotCoPartitioned) unless they,
        and the service's changelog, have one partition count: every output goes to the
        partition number of its input, so an order must find its partition everywhere."""
        wait = KAFKA_STEP_TIMEOUT
        partitions = self.retry(
            "find the shop's topics",
            lambda: shared_partition_count(self.settings, PIPELINE_TOPIC_NAMES, timeout=wait),
        )
        if self.service.keeps_state:
            self.retry(
                "create the state topic",
                lambda: create_state_topic(self.settings, self.state_topic, partitions, wait),
            )
            # Retried too: on a cluster, the node asked may not know the new topic yet.
            with_state = [*PIPELINE_TOPIC_NAMES, self.state_topic]
            self.retry(
                "find the state topic",
                lambda: shared_partition_count(self.settings, with_state, timeout=wait),
            )

    def output_topics(self) -> list[str]:
        return [*OUTPUT_TOPIC_NAMES, *([self.state_topic] if self.service.keeps_state else [])]

    def poll_timeout(self, now: float) -> float:
        if self.kitchen.has_ready:
            return 0.0  # work acknowledged at the last commit let an order's next event in
        waits = [IDLE_POLL_SECONDS]
        next_done = self.kitchen.seconds_until_next(now)
        if next_done is not None:
            waits.append(next_done)
        if self._commit_put_off:
            waits.append(max(0.0, self._last_commit + RUSH_COMMIT_SECONDS - now))
        return min(waits)

    # --- a turn ------------------------------------------------------------------------------

    def take(self, messages: list[Message]) -> None:
        now = time.monotonic()
        self._arrivals.note(len(messages), now)
        self._in_a_rush = (
            len(messages) >= self.batch_size or self._arrivals.per_second >= RUSH_EVENTS_PER_SECOND
        )
        for message in messages:
            ticket = ticket_of(message, self.problems)
            if ticket is not None:
                self.kitchen.take(ticket)
        self._start_ready(now)
        self._serve(now)
        self._start_ready(now)  # the next events of orders whose work was just served

    def _start_ready(self, now: float) -> None:
        """Handlers run here, in the loop, and nowhere else."""
        for ticket in self.kitchen.ready_to_start():
            if self._spans is None:
                work = self._handle(ticket)
            else:
                with tracing.current(self._spans.start(ticket)):
                    work = self._handle(ticket)
            self.kitchen.start(ticket, work, self.settings.scaled(work.seconds), now)

    def _handle(self, ticket: Ticket) -> Work:
        started = time.perf_counter()
        work = self._run_handler(ticket)
        self.metrics.handled(time.perf_counter() - started)
        return work

    def _run_handler(self, ticket: Ticket) -> Work:
        if ticket.event is None:
            return Work(dead_letter=ticket.error)
        try:
            work = self.service.handle(ticket.event, self._state.of(ticket.partition))
        except Exception as e:  # a handler bug must not stop the shop: the event is parked
            log.exception(
                "Handler failed on %s[%d]@%d",
                ticket.topic,
                ticket.partition,
                ticket.offset,
                extra={"order_id": ticket.key},
            )
            return Work(dead_letter=f"handler failed: {e!r}")
        if work.withdraws:
            work = self._in_place_of_work_in_progress(ticket, work)
        changes = work.state
        if self.service.keeps_state and changes:
            kept = self._changing_the_changelog(ticket.partition, changes)
            work = dataclasses.replace(work, state=kept)  # what its records will write
        # Changed now, not once the work is done: the order's next event, queued behind this
        # one in the kitchen, must see it (a second copy of the order is then ignored).
        self._state.change(ticket.partition, changes, contract.now_ms())
        return work

    def _changing_the_changelog(self, partition: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The changes that change what the changelog holds: an order handled of which it
        holds nothing (each pizza bake bakes) needs no tombstone there."""
        state = self._state.of(partition)
        return {
            order_id: value
            for order_id, value in changes.items()
            if kept_in_changelog(value) or kept_in_changelog(state.get(order_id))
        }

    def _in_place_of_work_in_progress(self, ticket: Ticket, work: Work) -> Work:
        """The work, once the order's work in progress is withdrawn; nothing if none is."""
        withdrawn = self.kitchen.withdraw(ticket)
        if withdrawn is None:
            log.info(
                "Order '%s': %s came too late, its work is done already: nothing to withdraw",
                ticket.key,
                ticket.topic,
                extra=self._about(ticket),
            )
            return NOTHING_TO_DO
        log.info(
            "Order '%s': %s withdrew its work in progress (%s[%d]@%d)",
            ticket.key,
            ticket.topic,
            withdrawn.topic,
            withdrawn.partition,
            withdrawn.offset,
            extra=self._about(ticket),
        )
        if self._spans is not None:
            self._spans.end(withdrawn)
        return work

    def _serve(self, now: float) -> None:
        for ticket, work in self.kitchen.done_cooking(now):
            if work.done_message and log.isEnabledFor(logging.INFO):
                log.info("%s", work.done_message, extra=self._about(ticket))
            records = self._records_of(ticket, work)
            self.metrics.produced(record.topic for record in records)
            if self._spans is not None:
                self._spans.end(ticket)
            if self.commits.finishes_on_send or not records:
                self.commits.send(records, on_delivered=None)
                self.kitchen.finish(ticket)
            else:
                self._unacknowledged[id(ticket)] = len(records)
                self.commits.send(
                    records, on_delivered=functools.partial(self._acknowledge, ticket)
                )

    def _records_of(self, ticket: Ticket, work: Work) -> list[OutgoingRecord]:
        """Its outputs, a dead letter, its state changes; all to the input's partition number
        (the order stays where its first producer put it), all naming the handler's span."""
        headers = None if self._spans is None else self._spans.headers(ticket)
        records = [
            OutgoingRecord.of(contract.encode(event), ticket.partition, headers)
            for event in work.outputs
        ]
        if work.dead_letter is not None:
            self.metrics.dead_lettered()
            letter = dead_letter_of(ticket, work.dead_letter, self.name)
            records.append(dead_letter_record(letter, headers))
        if self.service.keeps_state:
            records.extend(
                OutgoingRecord(
                    self.state_topic,
                    key.encode(),
                    changelog_value(value),
                    ticket.partition,
                    headers,
                )
                for key, value in work.state.items()
            )
        return records

    def _about(self, ticket: Ticket) -> dict[str, str | None]:
        """What a JSON log line about this ticket's order says beside its message."""
        trace_id = None if self._spans is None else self._spans.trace_id(ticket)
        return {"order_id": ticket.key, "trace_id": trace_id}

    def _acknowledge(self, ticket: Ticket) -> None:
        """Called from a delivery report: only noted here, finished in the loop."""
        left = self._unacknowledged[id(ticket)] - 1
        if left:
            self._unacknowledged[id(ticket)] = left
        else:
            del self._unacknowledged[id(ticket)]
            self._acknowledged.append(ticket)

    def commit_work(self, synchronous: bool = False) -> None:
        acknowledged, self._acknowledged = self._acknowledged, []
        for ticket in acknowledged:
            self.kitchen.finish(ticket)
        now = time.monotonic()
        self._commit_put_off = not synchronous and self._may_put_off_commit(now)
        if self._commit_put_off:
            return
        positions = {
            tp: offset
            for tp, offset in self._past_markers(self.kitchen.committable()).items()
            if self._committed.get(tp) != offset
        }
        started = time.perf_counter()
        with self._commit_span(positions):
            done = self.commits.commit(positions, synchronous)
        if done:
            self._committed.update(positions)
            self._last_commit = now
        if done and positions:
            self.metrics.committed(time.perf_counter() - started)

    def _may_put_off_commit(self, now: float) -> bool:
        """In a rush, under transactions: until RUSH_COMMIT_SECONDS after the last commit
        began (what came while it was committing counts towards the rate)."""
        return (
            self._in_a_rush and self.transactional and now - self._last_commit < RUSH_COMMIT_SECONDS
        )

    def _past_markers(self, offsets: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """Where a partition's events are all finished, its commit goes to the consumer's
        position: past the transaction markers after the last record, which are not records
        but take offsets. Else the group's lag would never read 0 in a quiet shop."""
        idle = self.kitchen.idle_partitions() & offsets.keys()
        if idle:
            for tp in self.consumer.position([TopicPartition(*source) for source in idle]):
                if tp.error is None and tp.offset > offsets[(tp.topic, tp.partition)]:
                    offsets[(tp.topic, tp.partition)] = tp.offset
        return offsets

    def _commit_span(self, positions: Positions) -> AbstractContextManager[None]:
        if self._spans is None or not positions:
            return contextlib.nullcontext()
        return self._spans.commit("commit")

    def after_turn(self) -> None:
        self._apply_back_pressure()
        self._look_after_state()
        self.metrics.in_the_works(len(self.kitchen), len(self.assigned) if self.paused else 0)

    def orders_in_the_works(self) -> int:
        return len(self.kitchen)

    def orders_in_state(self) -> int:
        """Entries its state holds now (handled orders included), over its partitions."""
        return len(self._state)

    def _apply_back_pressure(self) -> None:
        full = self.kitchen.is_full()
        if full == self.paused:
            return
        assignment = self.consumer.assignment()
        if full:
            self.consumer.pause(assignment)
        else:
            self.consumer.resume(assignment)
        self.paused = full

    # --- what it remembers, and partitions coming and going ---------------------------------

    def partitions_assigned(self, partitions: list[TopicPartition]) -> None:
        self._restore_state({tp.partition for tp in partitions})

    def partitions_revoked(self, partitions: list[tuple[str, int]]) -> None:
        dropped = self.kitchen.forget(partitions)
        if self._spans is not None:
            self._spans.drop(partitions)
        if dropped:
            log.info("Handed back %d order event(s) in the works to the next owner", dropped)
        for source in partitions:
            self._committed.pop(source, None)
        self._state.drop({partition for _, partition in partitions})

    def forget_work(self, partitions: list[tuple[str, int]]) -> None:
        self.kitchen.forget(partitions)
        if self._spans is not None:
            self._spans.drop(partitions)
        self._committed, self._acknowledged = {}, []
        self._restore_state({partition for _, partition in partitions})

    def _restore_state(self, partitions: set[int]) -> None:
        """The state from the changelog, then the orders handled, from pizza-status."""
        if not self.service.keeps_state and not self.service.handled_statuses:
            return
        changes = itertools.chain(
            read_changelog(self.settings, self.state_topic, partitions, self.read_committed)
            if self.service.keeps_state
            else (),
            read_handled(
                self.settings,
                partitions,
                self.service.handled_statuses,
                contract.now_ms() - self._state.remember_for_ms,
                self.read_committed,
            )
            if self.service.handled_statuses
            else (),
        )
        restored = self._state.restore(partitions, changes)
        log.info(
            "Restored state of %d order(s) in partition(s) %s",
            restored,
            ", ".join(map(str, sorted(partitions))),
        )

    def _look_after_state(self) -> None:
        """Now and then: forget the orders handled long ago, and settle entries overdue."""
        now = time.monotonic()
        if now < self._next_state_check:
            return
        self._next_state_check = now + self._state_check_seconds()
        if self.service.handled_statuses:
            self._forget_handled()
        if self.service.expire is not None:
            self._settle_overdue(self.service.expire)

    def _state_check_seconds(self) -> float:
        """At most a quarter of the shortest wait late (and no more than a minute)."""
        waits = [self.settings.remember_orders_for]
        if self.service.expire is not None:
            waits.append(self.service.expire_after)
        return max(MIN_STATE_CHECK_SECONDS, min(STATE_CHECK_SECONDS, *(w / 4 for w in waits)))

    def _forget_handled(self) -> None:
        forgotten = self._state.forget_handled(contract.now_ms())
        if forgotten:
            log.info(
                "Forgot %d order(s) handled over %gs ago",
                forgotten,
                self.settings.remember_orders_for,
            )

    def _settle_overdue(self, expire: Expiry) -> None:
        """Each entry the service calls overdue leaves the state (and its changelog), and the
        event it stands for is parked with the service's reason, in the next transaction."""
        now = contract.now_ms()
        records = []
        for entry in self._state.waiting_since(now - int(self.service.expire_after * 1000)):
            overdue = expire(entry.order_id, entry.value, (now - entry.since) / 1000)
            if overdue is None:
                continue
            self._state.change(entry.partition, {entry.order_id: None}, now)
            records.append(
                OutgoingRecord(self.state_topic, entry.order_id.encode(), None, entry.partition)
            )
            if overdue.park is not None:
                letter = self._overdue_letter(entry, overdue.park, overdue.reason)
                records.append(dead_letter_record(letter))
        if records:
            self.metrics.dead_lettered(sum(r.topic == contract.Topic.DEAD_LETTER for r in records))
            self.commits.send(records, on_delivered=None)

    def _overdue_letter(self, entry: Waiting, event: contract.Event, reason: str) -> DeadLetter:
        record = contract.encode(event)
        # Rebuilt from the state: where it was first read is not kept, hence offset -1.
        return DeadLetter(
            str(record.topic), entry.partition, -1, record.key, record.value, reason, self.name
        )

    def closed(self) -> None:
        log.info("%d order event(s) in the works were handed back", len(self.kitchen))


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
