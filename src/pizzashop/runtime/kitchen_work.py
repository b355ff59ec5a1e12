"""A kitchen service's work (assemble, bake, delivery): every event through the kitchen and
the service's handler, its outputs to the input's partition number, finished once its
checkpoint has them out; its partitions paused while the kitchen is full (back-pressure).
What it remembers is memory.py's."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time

from confluent_kafka import Message, TopicPartition

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.contract.topics import is_compacted
from pizzashop.kafka.topics import SHOP_TOPIC_NAMES
from pizzashop.observe import tracing
from pizzashop.observe.metrics import ServiceMetrics
from pizzashop.runtime.changelog import changelog_value
from pizzashop.runtime.checkpoint import Checkpoint, kitchen_cadence
from pizzashop.runtime.clients import ConsumerLike, TopicAdmin, reads_committed
from pizzashop.runtime.deadletters import dead_letter_of, dead_letter_record
from pizzashop.runtime.kitchen import Kitchen, Ticket
from pizzashop.runtime.memory import KitchenMemory
from pizzashop.runtime.problems import KAFKA_STEP_TIMEOUT, ProblemLog
from pizzashop.runtime.producing import OutgoingRecord, ProducerSetup, Retry, commit_policy
from pizzashop.runtime.tickets import ticket_of
from pizzashop.runtime.work import BATCH_SIZE, IDLE_POLL_SECONDS, Source
from pizzashop.service import NOTHING_TO_DO, KitchenService, Work

log = logging.getLogger("pizzashop.runtime")


def output_record(
    event: contract.Event, input_partition: int, headers: list[tuple[str, str]] | None
) -> OutgoingRecord:
    """An output as a record; to a compacted topic (a stock level), encoded only if sent."""
    event, partition = contract.routed(event, input_partition)
    topic = contract.TOPIC_OF[type(event)]
    if not is_compacted(topic):
        return OutgoingRecord.of(contract.encode(event), partition, headers)
    return OutgoingRecord(
        str(topic),
        event.order_id.encode(),
        None,
        partition,
        headers,
        encoding=lambda: contract.encode(event).value or None,
    )


class KitchenWork:
    batch_size = BATCH_SIZE

    def __init__(self, service: KitchenService, settings: Settings) -> None:
        self.service, self.settings = service, settings
        self.name, self.consumes = service.name, tuple(str(t) for t in service.consumes)
        self.metrics, self.problems = ServiceMetrics(service.name, settings.metrics), ProblemLog()
        # Outputs and offsets in Kafka transactions under exactly_once (producing.py).
        self.transactional = reads_committed(settings)
        self.memory = KitchenMemory(service, settings, self.transactional)
        self.output_topics = (*SHOP_TOPIC_NAMES, *self.memory.topics)
        interrupting = frozenset(str(topic) for topic in service.interrupting)
        self.kitchen = Kitchen(settings.capacity, interrupting)
        self.paused = 0  # partitions paused while the kitchen is full
        self._state = self.memory.state
        self._spans = tracing.TicketSpans(self.name) if tracing.enabled() else None
        self._consumer: ConsumerLike
        self._checkpoint: Checkpoint[Ticket]

    def prepare(self, admin: TopicAdmin, retry: Retry) -> None:
        self.memory.prepare_topics(admin, retry)

    def connect(self, consumer: ConsumerLike, producing: ProducerSetup) -> Checkpoint[Ticket]:
        self._consumer = consumer
        policy = commit_policy(self.transactional, producing, consumer, self.kitchen.finish)
        self._checkpoint = Checkpoint(
            policy,
            consumer,
            kitchen_cadence(self.transactional),
            finished=self.kitchen.committable,
            idle=self.kitchen.idle_partitions,
            metrics=self.metrics,
            spans=self._spans,
        )
        return self._checkpoint

    def poll_timeout(self, now: float) -> float:
        if self.kitchen.has_ready:
            return 0.0  # work acknowledged at the last commit let an order's next event in
        next_done = self.kitchen.seconds_until_next(now)
        return IDLE_POLL_SECONDS if next_done is None else min(IDLE_POLL_SECONDS, next_done)

    # --- a turn ------------------------------------------------------------------------------

    def take(self, messages: list[Message], now: float) -> None:
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
        if self.memory.keeps_state and changes:
            kept = self.memory.changing_the_changelog(ticket.partition, changes)
            work = dataclasses.replace(work, state=kept)  # what its records will write
        # Changed now, not once the work is done: the order's next event, queued behind this
        # one in the kitchen, must see it (a second copy of the order is then ignored).
        self._state.change(ticket.partition, changes, contract.now_ms())
        return work

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
        """Work done cooking goes out; it is finished once its checkpoint has it out."""
        for ticket, work in self.kitchen.done_cooking(now):
            if work.done_message and log.isEnabledFor(logging.INFO):
                log.info("%s", work.done_message, extra=self._about(ticket))
            records = self._records_of(ticket, work)
            self.metrics.produced(record.topic for record in records)
            if self._spans is not None:
                self._spans.end(ticket)
            self._checkpoint.send(records, ticket)

    def _records_of(self, ticket: Ticket, work: Work) -> list[OutgoingRecord]:
        """Its outputs, a dead letter, its state changes; all to the input's partition number
        (the order stays where its first producer put it) but the pantry's, which
        `contract.routed` routes; all naming the handler's span."""
        headers = None if self._spans is None else self._spans.headers(ticket)
        records = [output_record(event, ticket.partition, headers) for event in work.outputs]
        if work.dead_letter is not None:
            self.metrics.dead_lettered()
            letter = dead_letter_of(ticket, work.dead_letter, self.name)
            records.append(dead_letter_record(letter, headers))
        if self.memory.keeps_state:
            records.extend(
                OutgoingRecord(
                    self.memory.state_topic,
                    key.encode(),
                    None,
                    ticket.partition,
                    headers,
                    encoding=functools.partial(changelog_value, value),
                )
                for key, value in work.state.items()
            )
        return records

    def _about(self, ticket: Ticket) -> dict[str, str | None]:
        """What a JSON log line about this ticket's order says beside its message."""
        trace_id = None if self._spans is None else self._spans.trace_id(ticket)
        return {"order_id": ticket.key, "trace_id": trace_id}

    def after_turn(self, now: float) -> None:
        self._apply_back_pressure()
        settled = self.memory.look_after(now)
        if settled:
            self.metrics.dead_lettered(sum(r.topic == contract.Topic.DEAD_LETTER for r in settled))
            self._checkpoint.send(settled, None)
        self.metrics.in_the_works(len(self.kitchen), self.paused)

    def _apply_back_pressure(self) -> None:
        full = self.kitchen.is_full()
        if full == bool(self.paused):
            return
        assignment = self._consumer.assignment()
        if full:
            self._consumer.pause(assignment)
        else:
            self._consumer.resume(assignment)
        self.paused = len(assignment) if full else 0

    def in_the_works(self) -> int:
        return len(self.kitchen)

    def orders_in_state(self) -> int:
        """Entries its state holds now (handled orders included), over its partitions."""
        return len(self._state)

    # --- partitions coming and going ---------------------------------------------------------

    def assigned(self, partitions: list[TopicPartition]) -> None:
        self.memory.restore({tp.partition for tp in partitions})

    def revoked(self, partitions: list[Source]) -> None:
        dropped = self.kitchen.forget(partitions)
        if self._spans is not None:
            self._spans.drop(partitions)
        if dropped:
            log.info("Handed back %d order event(s) in the works to the next owner", dropped)
        self.memory.drop({partition for _, partition in partitions})

    def last_commit(
        self, consumer: ConsumerLike, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        return consumer.committed(partitions, KAFKA_STEP_TIMEOUT)

    def forget(self, partitions: list[Source]) -> None:
        self.kitchen.forget(partitions)
        if self._spans is not None:
            self._spans.drop(partitions)
        self.memory.restore({partition for _, partition in partitions})

    def close(self) -> None:
        log.info("%d order event(s) in the works were handed back", len(self.kitchen))
