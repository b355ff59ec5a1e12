"""A sink service's work (status): each batch written to the service's own store together
with the offsets it came from, and resumed from the offsets kept there. The store's
transaction gives it exactly-once whatever the guarantee; it produces only dead letters and
what its timer finds (stuck marks), and never in a Kafka transaction."""

from __future__ import annotations

import dataclasses
import logging
import time

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition
from opentelemetry.trace import Span

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.kafka.topics import SHOP_TOPIC_NAMES
from pizzashop.observe import logs, tracing
from pizzashop.observe.metrics import ServiceMetrics
from pizzashop.runtime.checkpoint import Cadence, Checkpoint
from pizzashop.runtime.clients import ConsumerLike, TopicAdmin
from pizzashop.runtime.deadletters import dead_letter_of, dead_letter_record
from pizzashop.runtime.kitchen import Ticket
from pizzashop.runtime.problems import ProblemLog
from pizzashop.runtime.producing import Acknowledgements, OutgoingRecord, ProducerSetup, Retry
from pizzashop.runtime.tickets import ticket_of
from pizzashop.runtime.work import IDLE_POLL_SECONDS, Source
from pizzashop.service import Routed, SinkService, StaleBatch

log = logging.getLogger("pizzashop.runtime")

# A sink writes each batch in one store transaction and holds nothing after it: when behind,
# bigger batches catch up faster (fewer transactions, fewer look-ups of what is stored).
SINK_BATCH_SIZE = 2000
# A sink's offsets that count are in its own store; the copy committed to Kafka only shows
# the group's lag, so once a second is enough (per batch, it was a write per batch to the broker).
POSITION_SECONDS = 1.0
# Those commits are not waited for, so one may be lost (its coordinator moving to another
# node): every so often the positions are committed again even if unchanged, or a quiet
# shop would show that lag for ever.
POSITION_AGAIN_SECONDS = 10.0
PARK_TIMEOUT = 30.0
# Where the sink is, committed to Kafka for its lag to show: never waited for, as the store's
# own offsets are the ones the next owner resumes from.
SINK_CADENCE = Cadence(
    POSITION_SECONDS, POSITION_SECONDS, again=POSITION_AGAIN_SECONDS, forced_waits=False
)


class SinkWork:
    batch_size = SINK_BATCH_SIZE
    output_topics = SHOP_TOPIC_NAMES

    def __init__(self, service: SinkService, settings: Settings) -> None:
        self.service, self.settings = service, settings
        self.name, self.consumes = service.name, tuple(str(t) for t in service.consumes)
        self.metrics, self.problems = ServiceMetrics(service.name, settings.metrics), ProblemLog()
        self._next_tick = 0.0
        self._retry: Retry
        self._consumer: ConsumerLike
        self._checkpoint: Checkpoint[None]

    def prepare(self, admin: TopicAdmin, retry: Retry) -> None:
        self._retry = retry  # its store may be away too

    def connect(self, consumer: ConsumerLike, producing: ProducerSetup) -> Checkpoint[None]:
        """Its producer carries only dead letters and stuck marks, never in a transaction."""
        self._consumer = consumer
        self._checkpoint = Checkpoint(
            Acknowledgements(producing, consumer), consumer, SINK_CADENCE, dict, self._all_read
        )
        return self._checkpoint

    def _all_read(self) -> list[Source]:
        """Everything read is stored (a batch is stored in the turn that read it): the commit
        goes to where the consumer is, past the transaction markers too, which take offsets."""
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    def poll_timeout(self, now: float) -> float:
        return min(IDLE_POLL_SECONDS, max(0.0, self._next_tick - now))

    def take(self, messages: list[Message], now: float) -> None:
        if messages and self._follow_switch():
            return  # read for the old store: read again from where the new one stands
        tickets = [t for t in (ticket_of(m, self.problems) for m in messages) if t is not None]
        if not tickets:
            return
        self._park(
            [dead_letter_of(t, t.error or "", self.name) for t in tickets if t.event is None]
        )
        decoded = [t for t in tickets if t.event is not None]
        events = [t.event for t in decoded if t.event is not None]
        sources = [(t.topic, t.partition, t.offset) for t in decoded]
        offsets = {t.source: t.offset + 1 for t in tickets}
        spans = self._start_spans(decoded)
        started = time.perf_counter()
        with logs.traces_of({t.key: tracing.trace_id_of(span) or "" for t, span in spans}):
            try:
                self._retry(
                    "update the read model",
                    lambda: self.service.materialise(events, offsets, sources),
                    where="the read model",
                )
            except StaleBatch as e:
                log.warning("A batch read before a pause was %s: going back to its offsets", e)
                self._resume_from_stored()
                return
        self.metrics.committed(time.perf_counter() - started)
        for _, span in spans:
            span.end()

    def _start_spans(self, tickets: list[Ticket]) -> list[tuple[Ticket, Span]]:
        """While tracing: a span for each event, the child of the one that produced it."""
        if not tracing.enabled():
            return []
        return [(t, tracing.start_consumer_span(self.name, t)) for t in tickets if t.headers]

    def _park(self, letters: list[DeadLetter]) -> bool:
        """Into the dead-letter topic before the offsets move past them; True once they are."""
        if not letters:
            return True
        self.metrics.dead_lettered(len(letters))
        self.metrics.produced(contract.Topic.DEAD_LETTER for _ in letters)
        self._checkpoint.send([dead_letter_record(letter) for letter in letters], None)
        left: int = self._checkpoint.producer.flush(PARK_TIMEOUT)
        return left == 0

    def after_turn(self, now: float) -> None:
        if now < self._next_tick:
            return
        self._next_tick = now + self.service.tick_seconds
        self._follow_switch()
        found = self.service.tick()
        letters = [f for f in found if isinstance(f, DeadLetter)]
        marks = [f for f in found if isinstance(f, Routed)]
        self._checkpoint.send(
            [OutgoingRecord.of(contract.encode(m.event), m.partition) for m in marks], None
        )
        self.metrics.produced(contract.Topic.STATUS for _ in marks)
        if self._park([dataclasses.replace(letter, service=self.name) for letter in letters]):
            self.service.parked(letters)  # only once they are safely parked; else next tick

    def _follow_switch(self) -> bool:
        """When the store was switched (a rebuilt read model), go back (or on) to the offsets it
        keeps, for the partitions held: nothing after them is lost, nothing before applied twice."""
        if not self.service.switched():
            return False
        held = self._resume_from_stored()
        log.info("The read model was switched: resuming %d partition(s) from its offsets", held)
        return True

    def _resume_from_stored(self) -> int:
        """Each partition held read again from the offset its store keeps; how many."""
        stored = self.service.stored_offsets()
        held = self._consumer.assignment()
        for tp in held:
            offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        self._checkpoint.forget((tp.topic, tp.partition) for tp in held)
        return len(held)

    def in_the_works(self) -> int:
        return 0  # a batch is stored in the turn that read it

    def assigned(self, partitions: list[TopicPartition]) -> None:
        """Nothing to restore: the loop assigns them from the offsets stored (last_commit)."""

    def last_commit(
        self, consumer: ConsumerLike, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        """The offsets stored with the view it produced (the group's commits in Kafka only
        show its position, and lag): from the start where none is stored yet."""
        stored = self.service.stored_offsets()
        return [
            TopicPartition(
                tp.topic, tp.partition, stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            )
            for tp in partitions
        ]

    def revoked(self, partitions: list[Source]) -> None:
        pass  # nothing is held between turns

    def forget(self, partitions: list[Source]) -> None:
        pass  # nothing is held between turns

    def close(self) -> None:
        self.service.close()
