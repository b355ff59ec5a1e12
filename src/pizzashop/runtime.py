"""The Kafka loop, written once: poll, decode, handle, produce, commit, shut down.

A service says what it consumes and gives a handler; this module does all the I/O.
Two shapes of service run here:

- kitchen services (assemble, bake, delivery): each event goes through the `Kitchen`, which
  keeps one order's events in order, runs many orders at once and tells when their simulated
  work is done; their outputs are then produced and the input offsets committed, inside one
  Kafka transaction (`exactly_once`) or after the outputs are acknowledged (`at_least_once`).
- sink services (status): each batch is written to an external store together with the
  offsets it came from, and the service resumes from the offsets kept there.

Events that break the wire contract, and events a handler cannot handle, go to the
dead-letter topic with the reason in headers; they never stop a service.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from pizzashop import contract
from pizzashop.changelog import (
    ServiceState, State, changelog_value, read_changelog, read_handled,
)
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import ContractError, Event, Record, Status, Topic
from pizzashop.kitchen import Kitchen, Ticket, TopicPartition as SourcePartition, Work
from pizzashop.topics import PIPELINE_TOPIC_NAMES, create_state_topic, shared_partition_count

log = logging.getLogger("pizzashop.runtime")

Handler = Callable[[Event, State], Work]
BATCH_SIZE = 500  # events a kitchen service takes at most per turn: its memory bound
# A sink writes each batch in one store transaction and holds nothing after it: when behind,
# bigger batches catch up faster (fewer transactions, fewer look-ups of what is stored).
SINK_BATCH_SIZE = 2000
IDLE_POLL_SECONDS = 0.1
# A sink's offsets that count are in its own store; the copy committed to Kafka only shows
# the group's lag, so once a second is enough (per batch, it was a write per batch to the broker).
SINK_POSITION_SECONDS = 1.0
# How often handled orders are looked at for forgetting: at most a minute late.
FORGET_CHECK_SECONDS = 60.0


@dataclass(frozen=True)
class Rejection:
    """An event a service gives up on after it was read: parked in the dead-letter topic."""

    topic: str  # where it was read from
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str


@dataclass(frozen=True)
class Routed:
    """An event bound for the partition number its order lives on (-1: unknown, by its key)."""

    event: Event
    partition: int


@dataclass(frozen=True)
class Service:
    """What a service is: what it consumes and what it does with each event."""

    name: str
    consumes: tuple[Topic, ...]
    handle: Handler | None = None  # kitchen services
    keeps_state: bool = False  # a per-order state, kept in a compacted changelog topic (changelog.py)
    # The statuses it produces for an order it has handled: read back from pizza-status on
    # start, they tell which orders to ignore if they come again (changelog.py).
    handled_statuses: frozenset[Status] = frozenset()
    # Sink services: a batch of events, the offsets to resume from, where each event was read.
    materialise: Callable[[Sequence[Event], Mapping[SourcePartition, int], Sequence[tuple[str, int, int]]],
                          None] | None = None
    stored_offsets: Callable[[], Mapping[SourcePartition, int]] | None = None
    # Called every `tick_seconds`: events to produce, and events read earlier to park now.
    tick: Callable[[], Sequence[Routed | Rejection]] | None = None
    tick_seconds: float = 1.0
    # Told which rejections are safely in the dead-letter topic (sink services only).
    parked: Callable[[Sequence[Rejection]], None] = field(default=lambda _: None)
    close: Callable[[], None] = field(default=lambda: None)

    @property
    def group_id(self) -> str:
        return f"pizza_{self.name}"

    @property
    def state_topic(self) -> str:
        return f"pizza_{self.name}-state"


def configure_logging(service_name: str, level: str = "INFO") -> None:
    """The seed's log format: `(msvc_assemble) INFO 21:00:39.604 - message`."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(
        f"(msvc_{service_name}) %(levelname)s %(asctime)s.%(msecs)03d - %(message)s",
        datefmt="%H:%M:%S",
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def run_service(service: Service, settings: Settings) -> None:
    """Run one service until SIGTERM or SIGINT."""
    runner = ServiceRunner(service, settings)
    runner.stop_on_signals()
    runner.run()


class ServiceRunner:
    def __init__(self, service: Service, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.read_committed = settings.processing_guarantee == "exactly_once"
        # Kitchen services commit outputs and offsets in Kafka transactions; a sink gets the
        # same guarantee from keeping its offsets in its own store, with the data.
        self.transactional = self.read_committed and service.materialise is None
        self._batch_size = SINK_BATCH_SIZE if service.materialise is not None else BATCH_SIZE
        self._stopping = threading.Event()
        self._kitchen = Kitchen(self._handle, settings.scaled, settings.capacity)
        self._state = ServiceState(int(settings.remember_orders_for * 1000))
        self._next_forget_check = 0.0
        self._committed: dict[SourcePartition, int] = {}
        self._sink_position: dict[SourcePartition, int] = {}  # not yet shown to Kafka
        self._sink_position_shown_at = 0.0
        self._in_transaction = False
        # The open transaction's records and what to call when each is delivered (_commit_transaction).
        self._held: list[tuple[OutgoingRecord, Callable[[], None] | None]] = []
        self._paused = False
        self._next_tick = 0.0
        self._unacknowledged: dict[int, int] = {}  # id(ticket) -> outputs not yet acknowledged
        self._problems = ProblemLog()
        self._backoff = Backoff()
        self.assigned: frozenset[SourcePartition] = frozenset()
        self.consumer: Consumer
        self.producer: Producer

    # --- lifecycle -------------------------------------------------------------------------

    def stop_on_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        self._connect()
        try:
            while not self._stopping.is_set():
                try:
                    self.step()
                except KafkaException as e:
                    self._start_over(e.args[0])
        finally:
            self._shut_down()

    def _connect(self) -> None:
        self._check_topics()
        self._new_producer()
        self.consumer = Consumer(self._consumer_config(kafka_client_config(self.settings)))
        topics = [str(t) for t in self.service.consumes]
        self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("Subscribed to topic(s): %s", ", ".join(topics))

    def _check_topics(self) -> None:
        """Wait for the pipeline's topics; refuse to start (TopicsNotCoPartitioned) unless they,
        and the service's changelog, have one partition count: every output goes to the
        partition number of its input, so an order must find its partition everywhere."""
        partitions = self._retry("find the shop's topics",
                                 lambda: shared_partition_count(self.settings, PIPELINE_TOPIC_NAMES))
        if self.service.keeps_state:
            topic = self.service.state_topic
            self._retry("create the state topic", lambda: create_state_topic(self.settings, topic, partitions))
            shared_partition_count(self.settings, [*PIPELINE_TOPIC_NAMES, topic])

    def _new_producer(self) -> None:
        self.producer = Producer(self._producer_config(kafka_client_config(self.settings)))
        self._in_transaction = False
        if self.transactional:
            self._retry("initialise transactions", lambda: self.producer.init_transactions(30))
        self._retry("look up the topics", self._learn_output_topics)

    def _learn_output_topics(self) -> None:
        """Without this, the first event to each topic waits up to a second for its metadata,
        and with it the transaction that carries it: a cold start costs every hop a second."""
        for topic in self._output_topics():
            self.producer.list_topics(topic, timeout=10)

    def _output_topics(self) -> list[str]:
        return [*OUTPUT_TOPIC_NAMES, *([self.service.state_topic] if self.service.keeps_state else [])]

    def _start_over(self, error: KafkaError) -> None:
        """After a Kafka failure: drop the open transaction (or the producer, if it cannot go
        on) and redo everything since the last commit. Failing again only means waiting
        and starting over once more: a service never dies of a broker problem."""
        self._problems.report("kafka", f"Kafka failed ({error}): starting over from the last commit")
        try:
            if self.transactional:
                self._drop_transaction(error)
            self._rewind()
        except KafkaException as again:
            log.debug("Starting over failed too (%s); trying again shortly", again)
            self._stopping.wait(self._backoff.next())
        else:
            self._backoff.reset()

    def _drop_transaction(self, error: KafkaError) -> None:
        self._held = []
        if not error.fatal():
            try:
                self.producer.abort_transaction(30)
                self._in_transaction = False
                return
            except KafkaException as e:
                if not e.args[0].fatal():
                    raise
        log.warning("The producer cannot go on (%s): starting a new one", error)
        self.producer.flush(0)
        self._new_producer()

    def _producer_config(self, base: dict[str, str]) -> dict[str, Any]:
        config: dict[str, Any] = {
            **base,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "client.id": f"pizza_{self.service.name}",
            # Only for records with no input to follow (dead letters, stuck marks of old orders).
            "partitioner": contract.PARTITIONER,
            "error_cb": self._on_client_error,
        }
        if self.transactional:
            # Unique per instance: zombies are fenced by the consumer group generation (KIP-447).
            config["transactional.id"] = (
                f"pizza_{self.service.name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            )
            # A killed instance's open transaction holds back read_committed readers until
            # the broker aborts it: keep that wait short.
            config["transaction.timeout.ms"] = 10_000
            # The broker answers "concurrent transactions" to a new transaction while it still
            # writes the last one's markers (a few ms); retrying after the default 100 ms put
            # a tenth of a second on every hop of every order. (Backoff still grows to 1 s.)
            config["retry.backoff.ms"] = 1
            # Committing a transaction sends what is waiting at once, whatever the linger, so
            # a long one costs no latency; it only stops the records of one transaction from
            # trickling out in many small requests while the loop is still making them
            # (a quarter of the broker's work in a rush).
            config["linger.ms"] = 100
        return config

    def _consumer_config(self, base: dict[str, str]) -> dict[str, Any]:
        return {
            **base,
            "group.id": self.service.group_id,
            "client.id": f"pizza_{self.service.name}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if self.read_committed else "read_uncommitted",
            # Orders of one id land on the same partition number in every topic; the range
            # assignor gives those partitions to the same instance (delivery relies on it).
            "partition.assignment.strategy": "range",
            "fetch.wait.max.ms": 10,
            # A killed instance's partitions move to the others after this long.
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "error_cb": self._on_client_error,
        }

    def _shut_down(self) -> None:
        log.info("Shutting down: %d order event(s) in the works are handed back", len(self._kitchen))
        try:
            if not self.transactional:
                self.producer.flush(10)  # acknowledgements arrive, so finished work is committed
            self._commit_progress(synchronous=True)
        except KafkaException as e:
            log.warning("Could not commit on the way out (the next owner redoes it): %s", e)
        self.consumer.close()  # leaves the group now, so its partitions move at once
        self.producer.flush(10)
        self.service.close()
        log.info("Stopped")

    # --- one turn of the loop --------------------------------------------------------------

    def step(self) -> None:
        now = time.monotonic()
        messages = self._next_batch(self._poll_timeout(now))
        tickets = [t for t in (self._ticket(m) for m in messages) if t is not None]
        if self.service.materialise is not None:
            self._materialise(tickets)
        else:
            now = time.monotonic()
            for ticket in tickets:
                self._kitchen.take(ticket, now)
            self._serve(time.monotonic())
        self.producer.poll(0)
        self._commit_progress()
        self._apply_back_pressure()
        self._maybe_tick()
        self._maybe_forget_handled()
        self._problems.clear("kafka")

    def _next_batch(self, timeout: float) -> list[Message]:
        """What has arrived, up to a batch; waits up to `timeout` only when nothing has.

        (consume(n, timeout) alone would wait for n messages or the whole timeout, adding
        that wait to every hop of an order while the shop is quiet.)
        """
        messages = self.consumer.consume(self._batch_size, 0)
        if messages:
            return messages
        first = self.consumer.consume(1, timeout)
        return first + self.consumer.consume(self._batch_size - 1, 0) if first else first

    def _poll_timeout(self, now: float) -> float:
        waits = [IDLE_POLL_SECONDS]
        next_done = self._kitchen.seconds_until_next(now)
        if next_done is not None:
            waits.append(next_done)
        if self.service.tick is not None:
            waits.append(max(0.0, self._next_tick - now))
        return min(waits)

    def _ticket(self, message: Message) -> Ticket | None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            self._problems.report("consume", str(error))
            return None
        self._problems.clear("consume")
        topic, key, value = message.topic(), message.key(), message.value()
        _, timestamp = message.timestamp()
        try:
            event: Event | None = contract.decode(topic, key, value, timestamp)
            reason = None
        except ContractError as e:
            event, reason = None, str(e)
        return Ticket(
            topic=topic, partition=message.partition(), offset=message.offset(),
            key=_printable_key(key), event=event, raw_key=key, raw_value=value, error=reason,
        )

    # --- kitchen services --------------------------------------------------------------------

    def _handle(self, ticket: Ticket) -> Work:
        if ticket.event is None:
            return Work(dead_letter=ticket.error)
        assert self.service.handle is not None
        try:
            work = self.service.handle(ticket.event, self._state.of(ticket.partition))
        except Exception as e:  # a handler bug must not stop the shop: the event is parked
            log.exception("Handler failed on %s[%d]@%d", ticket.topic, ticket.partition, ticket.offset)
            return Work(dead_letter=f"handler failed: {e!r}")
        # Changed now, not once the work is done: the order's next event, queued behind this
        # one in the kitchen, must see it (a second copy of the order is then ignored).
        self._state.change(ticket.partition, work.state, contract.now_ms())
        return work

    def _serve(self, now: float) -> None:
        for ticket, work in self._kitchen.done_cooking(now):
            if work.done_message:
                log.info(work.done_message)
            records = self._records_of(ticket, work)
            if self.transactional or not records:
                self._send(records, on_delivered=None)
                self._kitchen.finish(ticket, now)
            else:
                self._unacknowledged[id(ticket)] = len(records)
                self._send(records, on_delivered=lambda t=ticket: self._acknowledged(t))

    def _records_of(self, ticket: Ticket, work: Work) -> list[OutgoingRecord]:
        # To the input's partition number: the order stays where its first producer put it.
        records = [OutgoingRecord.of(contract.encode(event), ticket.partition) for event in work.outputs]
        if work.dead_letter is not None:
            records.append(self._dead_letter(_rejection(ticket, work.dead_letter)))
        if self.service.keeps_state:
            records.extend(OutgoingRecord(self.service.state_topic, key.encode(), changelog_value(value),
                                          ticket.partition) for key, value in work.state.items())
        return records

    def _acknowledged(self, ticket: Ticket) -> None:
        left = self._unacknowledged[id(ticket)] - 1
        if left:
            self._unacknowledged[id(ticket)] = left
        else:
            del self._unacknowledged[id(ticket)]
            self._kitchen.finish(ticket, time.monotonic())

    # --- sink services -----------------------------------------------------------------------

    def _materialise(self, tickets: list[Ticket]) -> None:
        if not tickets:
            return
        dead = [self._dead_letter(_rejection(t, t.error or "")) for t in tickets if t.event is None]
        if dead:
            self._send(dead, on_delivered=None)
            self.producer.flush(30)  # parked before the offsets move past them
        decoded = [t for t in tickets if t.event is not None]
        events = [t.event for t in decoded]
        sources = [(t.topic, t.partition, t.offset) for t in decoded]
        offsets: dict[SourcePartition, int] = {}
        for t in tickets:
            offsets[t.source] = t.offset + 1
        assert self.service.materialise is not None
        self._retry("update the read model", lambda: self.service.materialise(events, offsets, sources))
        self._sink_position.update(offsets)

    # --- producing ---------------------------------------------------------------------------

    def _dead_letter(self, rejection: Rejection) -> OutgoingRecord:
        log.warning("Dead-lettered %s[%d]@%d: %s",
                    rejection.topic, rejection.partition, rejection.offset, rejection.reason)
        headers = {
            "source_topic": rejection.topic,
            "source_partition": str(rejection.partition),
            "source_offset": str(rejection.offset),
            "error": rejection.reason,
            "service": self.service.name,
        }
        return OutgoingRecord(str(Topic.DEAD_LETTER), rejection.key, rejection.value,
                              headers=list(headers.items()))

    def _send(self, records: Sequence[OutgoingRecord], on_delivered: Callable[[], None] | None) -> None:
        if self.transactional:  # produced at commit, once the offsets are in: see _commit_transaction
            self._begin_transaction()
            self._held.extend((record, on_delivered) for record in records)
            return
        for record in records:
            self._produce(record, on_delivered)

    def _produce(self, record: OutgoingRecord, on_delivered: Callable[[], None] | None) -> None:
        def report(err: KafkaError | None, message: Message) -> None:
            if err is not None and self.transactional:
                log.error("Failed to produce to %s: %s", record.topic, err)
                return  # the transaction cannot commit now; it is aborted and redone
            if err is not None:
                log.error("Failed to produce to %s: %s; producing it again", record.topic, err)
                self._produce(record, on_delivered)
                return
            if record.topic in PIPELINE_TOPIC_NAMES:
                log_produced(message)
            if on_delivered is not None:
                on_delivered()

        # In a transaction a failed send fails the commit, which redoes the work: the report
        # is only needed for the seed's log line, and costs a Python call per event.
        needed = not self.transactional or on_delivered is not None or log.isEnabledFor(logging.INFO)
        while True:
            try:
                self.producer.produce(
                    record.topic, key=record.key, value=record.value, partition=record.partition,
                    headers=record.headers, on_delivery=report if needed else None,
                )
                return
            except BufferError:
                self.producer.poll(0.05)  # the local queue is full: let deliveries drain

    # --- committing --------------------------------------------------------------------------

    def _begin_transaction(self) -> None:
        if self.transactional and not self._in_transaction:
            self.producer.begin_transaction()
            self._in_transaction = True

    def _commit_progress(self, synchronous: bool = False) -> None:
        if self.service.materialise is not None:
            self._show_sink_position(synchronous)
            return
        offsets = {
            tp: offset for tp, offset in self._kitchen.committable().items()
            if self._committed.get(tp) != offset
        }
        if not offsets and not self._in_transaction:
            return
        positions = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
        if self.transactional:
            self._commit_transaction(positions)
        else:
            self.consumer.commit(offsets=positions, asynchronous=not synchronous)
        self._committed.update(offsets)

    def _show_sink_position(self, at_once: bool) -> None:
        """Commit where the sink is, for lag to show: once a second, or at once when partitions
        go. Never waited for: the store's own offsets are the ones the next owner resumes from."""
        now = time.monotonic()
        if not self._sink_position or (not at_once and now - self._sink_position_shown_at < SINK_POSITION_SECONDS):
            return
        positions = [TopicPartition(t, p, o) for (t, p), o in self._sink_position.items()]
        self._sink_position, self._sink_position_shown_at = {}, now
        self.consumer.commit(offsets=positions, asynchronous=True)

    def _commit_transaction(self, positions: list[TopicPartition]) -> None:
        """Offsets first, then the records, then the commit.

        Until the broker has written the last transaction's markers it turns a new one away
        ("concurrent transactions"). Turned away, the offsets are retried after
        `retry.backoff.ms`, but librdkafka retries the partitions of produced records only
        after a fixed 20 ms: held back until the offsets are in, they never wait for it.
        """
        self._begin_transaction()
        try:
            if positions:
                self.producer.send_offsets_to_transaction(
                    positions, self.consumer.consumer_group_metadata(), 30)
            held, self._held = self._held, []
            for record, on_delivered in held:
                self._produce(record, on_delivered)
            self.producer.commit_transaction(30)
        except KafkaException as e:
            error = e.args[0]
            if error.retriable() and not error.fatal() and not error.txn_requires_abort():
                self._problems.report("commit", str(error))
                return  # the transaction stays open; the next turn tries again
            raise  # anything else: abort (or a new producer) and redo, see _start_over
        else:
            self._in_transaction = False
            self._problems.clear("commit")
            self._problems.clear("client")

    def _rewind(self) -> None:
        """Forget the work in the kitchen and read again from the last committed offsets."""
        assigned = self.consumer.assignment()
        self._kitchen.forget([(tp.topic, tp.partition) for tp in assigned], time.monotonic())
        committed = self.consumer.committed(assigned, 30)
        for tp in committed:
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, OFFSET_BEGINNING)))
        self._committed = {}
        self._sink_position = {}
        if self._remembers:
            self._restore_state({tp.partition for tp in assigned})

    # --- rebalances ----------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("Assigned %s", _describe(partitions))
        self.assigned = self.assigned | {(tp.topic, tp.partition) for tp in partitions}
        if self.service.stored_offsets is not None:
            stored = self.service.stored_offsets()
            for tp in partitions:
                tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            consumer.assign(partitions)
        if self._remembers:
            self._restore_state({tp.partition for tp in partitions})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("Revoked %s", _describe(partitions))
        if not self.transactional:
            self.producer.flush(30)  # acknowledgements arrive, so finished work is committed
        try:
            self._commit_progress(synchronous=True)
        except KafkaException as e:
            log.warning("Could not commit before handing partitions over: %s", e)
        gone = [(tp.topic, tp.partition) for tp in partitions]
        self.assigned = self.assigned - set(gone)
        dropped = self._kitchen.forget(gone, time.monotonic())
        if dropped:
            log.info("Handed back %d order event(s) in the works to the next owner", dropped)
        for source in gone:
            self._committed.pop(source, None)
        self._state.drop({tp.partition for tp in partitions})

    @property
    def _remembers(self) -> bool:
        return self.service.keeps_state or bool(self.service.handled_statuses)

    def _restore_state(self, partitions: set[int]) -> None:
        """The state from the changelog, then the orders handled, from pizza-status."""
        changes = itertools.chain(
            read_changelog(self.settings, self.service.state_topic, partitions, self.read_committed)
            if self.service.keeps_state else (),
            read_handled(self.settings, partitions, self.service.handled_statuses,
                         contract.now_ms() - self._state.remember_for_ms, self.read_committed)
            if self.service.handled_statuses else (),
        )
        restored = self._state.restore(partitions, changes)
        log.info("Restored state of %d order(s) in partition(s) %s", restored,
                 ", ".join(map(str, sorted(partitions))))

    def _maybe_forget_handled(self) -> None:
        now = time.monotonic()
        if not self.service.handled_statuses or now < self._next_forget_check:
            return
        self._next_forget_check = now + min(FORGET_CHECK_SECONDS, self.settings.remember_orders_for / 4)
        forgotten = self._state.forget_handled(contract.now_ms())
        if forgotten:
            log.info("Forgot %d order(s) handled over %gs ago", forgotten, self.settings.remember_orders_for)

    # --- back-pressure, ticks, problems ------------------------------------------------------

    def _apply_back_pressure(self) -> None:
        full = self._kitchen.is_full()
        if full == self._paused:
            return
        assignment = self.consumer.assignment()
        if full:
            self.consumer.pause(assignment)
        else:
            self.consumer.resume(assignment)
        self._paused = full

    def _maybe_tick(self) -> None:
        if self.service.tick is None:
            return
        now = time.monotonic()
        if now < self._next_tick:
            return
        self._next_tick = now + self.service.tick_seconds
        outputs = self.service.tick()
        if not outputs:
            return
        self._send([self._dead_letter(o) if isinstance(o, Rejection)
                    else OutgoingRecord.of(contract.encode(o.event), o.partition) for o in outputs],
                   on_delivered=None)
        rejections = [o for o in outputs if isinstance(o, Rejection)]
        if not rejections:
            return
        self._commit_progress()  # in a transaction, they go out with its commit
        if self.producer.flush(30) == 0:
            self.service.parked(rejections)  # only once they are safely parked; else next tick

    def _on_client_error(self, error: KafkaError) -> None:
        # Fatal errors also surface from the call that meets them, which decides what to do.
        self._problems.report("client", str(error))

    def _retry(self, what: str, action: Callable[[], Any]) -> Any:
        backoff = Backoff()
        while True:
            try:
                result = action()
            except (KafkaException, OSError, RuntimeError) as e:
                if self._stopping.is_set():
                    raise
                self._problems.report(what, f"could not {what}: {e}; retrying")
                self._stopping.wait(backoff.next())
            else:
                self._problems.clear(what)
                return result


def _rejection(ticket: Ticket, reason: str) -> Rejection:
    return Rejection(ticket.topic, ticket.partition, ticket.offset, ticket.raw_key, ticket.raw_value, reason)


OUTPUT_TOPIC_NAMES = sorted({*PIPELINE_TOPIC_NAMES, str(Topic.DEAD_LETTER)})


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int = -1  # -1: chosen by the key
    headers: list[tuple[str, str]] | None = None

    @classmethod
    def of(cls, record: Record, partition: int = -1) -> OutgoingRecord:
        return cls(str(record.topic), record.key, record.value or None, partition)



def log_produced(message: Message) -> None:
    """The seed's delivery report line, with the real partition and offset."""
    value = message.value()
    log.info(
        "Event successfully produced\n - Topic '%s', Partition #%d, Offset #%d\n - Key: %s\n - Value: %s",
        message.topic(), message.partition(), message.offset(),
        _printable_key(message.key()), value.decode() if value else "",
    )


class Backoff:
    """Waits that double from 0.1 s up to 5 s while something keeps failing."""

    def __init__(self, first: float = 0.1, longest: float = 5.0) -> None:
        self.first, self.longest, self._next = first, longest, first

    def next(self) -> float:
        wait, self._next = self._next, min(self._next * 2, self.longest)
        return wait

    def reset(self) -> None:
        self._next = self.first


class ProblemLog:
    """Logs a recurring problem once when it starts and once when it is over, not every time."""

    def __init__(self) -> None:
        self._active: dict[str, str] = {}

    def report(self, what: str, detail: str) -> None:
        if what not in self._active:
            log.warning("%s (will keep retrying, logged once)", detail)
        self._active[what] = detail

    def clear(self, what: str) -> None:
        if self._active.pop(what, None) is not None:
            log.info("Recovered: %s works again", what)


def _printable_key(key: bytes | None) -> str:
    if key is None:
        return ""
    return key.decode("utf-8", errors="replace")


def _describe(partitions: list[TopicPartition]) -> str:
    if not partitions:
        return "no partitions"
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)

