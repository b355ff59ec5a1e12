"""Producing a service's records and committing what it consumed: the two processing guarantees.

- `Transactions` (exactly_once): a turn's records, its state changes and its input offsets
  go out in one Kafka transaction; work counts as finished once it is in the transaction.
- `Acknowledgements` (at_least_once): records go out at once; work counts as finished once
  all its records are acknowledged, and only then are its input offsets committed.

Both answer the same calls, so the loops above them never ask which guarantee they serve.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from pizzashop.config import Settings
from pizzashop.contract import Record
from pizzashop.contract.topics import is_compacted
from pizzashop.kafka.records import record_headers
from pizzashop.kafka.topics import PIPELINE_TOPIC_NAMES
from pizzashop.observe import tracing
from pizzashop.runtime.clients import ConsumerLike, ProducerFactory, ProducerLike, producer_config
from pizzashop.runtime.problems import KAFKA_STEP_TIMEOUT, ProblemLog
from pizzashop.runtime.wedge import TransactionWatch

log = logging.getLogger("pizzashop.runtime")

Positions = Mapping[tuple[str, int], int]  # (topic, partition) -> the next offset to read
TRANSACTION_CALL_TIMEOUT = 30.0  # seconds: send_offsets, commit and abort
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Retry(Protocol):
    """`action()` until it works or the service stops; `where` names what it waits for (the
    Kafka broker, by default) in the line logged at the first failure."""

    def __call__(self, what: str, action: Callable[[], T], where: str | None = None) -> T: ...


class GroupMember(Protocol):
    """What a transaction asks of the consumer whose offsets it commits: its group's metadata."""

    def consumer_group_metadata(self) -> object: ...


@dataclass(slots=True)  # not frozen, as a Ticket: one is made for every record produced
class OutgoingRecord:
    """A record to send. Its value is `value`, or with `encoding` set, what that gives once the
    record is sent: a record to a compacted topic that a later one of the same key replaces
    in its transaction (see `last_of_each_key`) is never encoded."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int = -1  # -1: chosen by the partitioner from the key
    headers: list[tuple[str, str]] | None = None
    encoding: Callable[[], bytes | None] | None = None

    def payload(self) -> bytes | None:
        return self.value if self.encoding is None else self.encoding()

    @classmethod
    def of(
        cls, record: Record, partition: int = -1, headers: list[tuple[str, str]] | None = None
    ) -> OutgoingRecord:
        return cls(str(record.topic), record.key, record.value or None, partition, headers)


class CommitPolicy(Protocol[T_contra]):
    """Either guarantee, as the checkpoint (checkpoint.py) uses it. What is sent for a piece
    of work (`done`, a kitchen's ticket) makes it finished, told to the `finish` the policy was
    made with: in a transaction at once, else once every record of it is acknowledged."""

    producer: ProducerLike

    def send(self, records: Sequence[OutgoingRecord], done: T_contra | None) -> None: ...

    def finish_acknowledged(self) -> None:
        """Finish the work whose records were all acknowledged since the last call."""

    def commit(self, positions: Positions, synchronous: bool = False) -> bool:
        """Commit what was sent and these input positions; False if it must be tried again."""

    def settle(self) -> None:
        """Before partitions are handed over: let every acknowledgement arrive."""

    def start_over(self, error: KafkaError) -> None:
        """After a Kafka failure: drop what was not committed (the loop redoes it)."""


@dataclass(frozen=True)
class ProducerSetup:
    """How either policy makes its producer: whose it is, what it writes to, where problems
    go, how a step is retried while Kafka is away, what times its transactional calls (see
    wedge.py), and (a stand-in in tests) the producer."""

    settings: Settings
    service: str
    output_topics: Sequence[str]
    problems: ProblemLog
    retry: Retry
    watch: TransactionWatch = field(default_factory=TransactionWatch)
    make_producer: ProducerFactory = Producer

    def new_producer(self, transactional: bool) -> ProducerLike:
        producer = self.make_producer(
            producer_config(self.settings, self.service, transactional, on_error=self._client_error)
        )
        if transactional:
            # A try that times out is resumed by the next (librdkafka keeps its progress).
            self.retry(
                "initialise transactions",
                lambda: self.watch.call(
                    "init_transactions",
                    KAFKA_STEP_TIMEOUT,
                    lambda: producer.init_transactions(KAFKA_STEP_TIMEOUT),
                ),
            )
        self.retry("look up the topics", lambda: learn_topics(producer, self.output_topics))
        return producer

    def _client_error(self, error: KafkaError) -> None:
        # Fatal errors also surface from the call that meets them, which decides what to do.
        self.problems.report("client", str(error))


def _nothing_to_finish(done: object) -> None:
    pass


class Transactions(Generic[T]):
    def __init__(
        self,
        setup: ProducerSetup,
        consumer: GroupMember,
        finish: Callable[[T], None] = _nothing_to_finish,
    ) -> None:
        self._setup, self._consumer, self._problems = setup, consumer, setup.problems
        self._watch, self._finish = setup.watch, finish
        self._held: list[OutgoingRecord] = []
        self._open = False
        self.producer = setup.new_producer(transactional=True)

    def send(self, records: Sequence[OutgoingRecord], done: T | None) -> None:
        """Held until the commit, where they follow the offsets (see `commit`); the work is
        finished at once: a transaction holds its records and its offsets, or neither."""
        self._begin()
        self._held.extend(records)
        if done is not None:
            self._finish(done)

    def finish_acknowledged(self) -> None:
        pass  # finished when sent

    def _begin(self) -> None:
        if not self._open:
            self.producer.begin_transaction()
            self._open = True

    def commit(self, positions: Positions, synchronous: bool = False) -> bool:
        """Offsets first, then the records, then the commit.

        Until the broker has written the last transaction's markers it turns a new one away
        ("concurrent transactions"). Turned away, the offsets are retried after
        `retry.backoff.ms`, but librdkafka retries the partitions of produced records only
        after a fixed 20 ms: held back until the offsets are in, they never wait for it.
        """
        if not positions and not self._open:
            return True
        self._begin()
        try:
            if positions:
                self._send_offsets(positions)
            held, self._held = last_of_each_key(self._held), []
            for record in held:
                produce(self.producer, record, None, transactional=True)
            self._watch.call(
                "commit_transaction",
                TRANSACTION_CALL_TIMEOUT,
                lambda: self.producer.commit_transaction(TRANSACTION_CALL_TIMEOUT),
            )
        except KafkaException as e:
            error = e.args[0]
            if error.retriable() and not error.fatal() and not error.txn_requires_abort():
                self._problems.report("commit", str(error))
                return False  # the transaction stays open; the next turn tries again
            raise  # anything else: abort (or a new producer) and redo, see start_over
        self._open = False
        self._problems.clear("commit")
        self._problems.clear("client")
        return True

    def _send_offsets(self, positions: Positions) -> None:
        offsets, group = as_topic_partitions(positions), self._consumer.consumer_group_metadata()
        self._watch.call(
            "send_offsets_to_transaction",
            TRANSACTION_CALL_TIMEOUT,
            lambda: self.producer.send_offsets_to_transaction(
                offsets, group, TRANSACTION_CALL_TIMEOUT
            ),
        )

    def settle(self) -> None:
        pass  # nothing is acknowledged outside a commit

    def start_over(self, error: KafkaError) -> None:
        self._held = []
        if not self._open and not error.fatal():
            return  # no transaction to drop
        if not error.fatal():
            try:
                self._watch.call(
                    "abort_transaction",
                    TRANSACTION_CALL_TIMEOUT,
                    lambda: self.producer.abort_transaction(TRANSACTION_CALL_TIMEOUT),
                )
                self._open = False
                return
            except KafkaException as e:
                if not e.args[0].fatal():
                    raise
                error = e.args[0]  # the abort's own error says why (fenced, most often)
        log.warning("The producer cannot go on (%s): starting a new one", error)
        self.producer.flush(0)
        self._open = False
        self.producer = self._setup.new_producer(transactional=True)


def last_of_each_key(records: Sequence[OutgoingRecord]) -> list[OutgoingRecord]:
    """One transaction's records, but of those to a compacted topic only the last of each key.
    A reader (read committed) sees the transaction whole and compaction keeps only the last,
    so the ones before it would only cost the broker and every reader: the pantry changes an
    ingredient's level many times in one transaction, and a service its state."""
    last = {(r.topic, r.key): n for n, r in enumerate(records) if is_compacted(r.topic)}
    return [r for n, r in enumerate(records) if last.get((r.topic, r.key), n) == n]


class Acknowledgements(Generic[T]):
    def __init__(
        self,
        setup: ProducerSetup,
        consumer: ConsumerLike,
        finish: Callable[[T], None] = _nothing_to_finish,
    ) -> None:
        self._consumer, self._finish = consumer, finish
        self._unacknowledged: dict[int, int] = {}  # id(done) -> its records not acknowledged
        self._acknowledged: list[T] = []  # every record out: finished at the next commit
        self.producer = setup.new_producer(transactional=False)

    def send(self, records: Sequence[OutgoingRecord], done: T | None) -> None:
        if done is None or not records:
            for record in records:
                produce(self.producer, record, None, transactional=False)
            if done is not None:
                self._finish(done)
            return
        self._unacknowledged[id(done)] = len(records)
        on_delivered = functools.partial(self._acknowledge, done)
        for record in records:
            produce(self.producer, record, on_delivered, transactional=False)

    def _acknowledge(self, done: T) -> None:
        """Called from a delivery report: only noted here, finished in the loop."""
        left = self._unacknowledged[id(done)] - 1
        if left:
            self._unacknowledged[id(done)] = left
        else:
            del self._unacknowledged[id(done)]
            self._acknowledged.append(done)

    def finish_acknowledged(self) -> None:
        acknowledged, self._acknowledged = self._acknowledged, []
        for done in acknowledged:
            self._finish(done)

    def commit(self, positions: Positions, synchronous: bool = False) -> bool:
        if positions:
            offsets = as_topic_partitions(positions)
            if synchronous:  # the client's types want a literal for `asynchronous`
                self._consumer.commit(offsets=offsets, asynchronous=False)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=True)
        return True

    def settle(self) -> None:
        self.producer.flush(30)

    def start_over(self, error: KafkaError) -> None:
        # What was acknowledged stays committed; the rest is redone from the committed
        # offsets, and what is acknowledged of it meanwhile is not finished again.
        self._acknowledged = []


def commit_policy(
    transactional: bool,
    setup: ProducerSetup,
    consumer: ConsumerLike,
    finish: Callable[[T], None] = _nothing_to_finish,
) -> CommitPolicy[T]:
    """Transactions under exactly_once, acknowledgements under at_least_once."""
    if transactional:
        return Transactions(setup, consumer, finish)
    return Acknowledgements(setup, consumer, finish)


def produce(
    producer: ProducerLike,
    record: OutgoingRecord,
    on_delivered: Callable[[], None] | None,
    transactional: bool,
) -> None:
    """Hand one record to the producer; `on_delivered` once it is acknowledged (from a
    `poll`). Outside a transaction a failed record is produced again."""

    def report(err: KafkaError | None, message: Message) -> None:
        if err is not None and transactional:
            log.error("Failed to produce to %s: %s", record.topic, err)
            return  # the transaction cannot commit now; it is aborted and redone
        if err is not None:
            log.error("Failed to produce to %s: %s; producing it again", record.topic, err)
            produce(producer, record, on_delivered, transactional)
            return
        if record.topic in PIPELINE_TOPIC_NAMES:
            log_produced(message)
        if on_delivered is not None:
            on_delivered()

    # In a transaction a failed send fails the commit, which redoes the work: the report is
    # only needed for the seed's log line, and costs a Python call per event.
    needed = not transactional or on_delivered is not None or log.isEnabledFor(logging.INFO)
    while True:
        try:
            producer.produce(
                record.topic,
                key=record.key,
                value=record.payload(),
                partition=record.partition,
                # Copied into the list type produce() takes (ours holds str values only).
                headers=None if record.headers is None else list(record.headers),
                on_delivery=report if needed else None,
            )
            return
        except BufferError:
            producer.poll(0.05)  # the local queue is full: let deliveries drain


def log_produced(message: Message) -> None:
    """The seed's delivery report line, with the real partition and offset."""
    value, key = message.value(), printable_key(message.key())
    log.info(
        "Event successfully produced\n - Topic '%s', Partition #%d, Offset #%d\n - Key: %s\n - Value: %s",
        message.topic(),
        message.partition(),
        message.offset(),
        key,
        value.decode() if value else "",
        extra={"order_id": key, "trace_id": tracing.trace_id_in(record_headers(message))},
    )


def learn_topics(producer: ProducerLike, topics: Sequence[str]) -> None:
    """Without this, the first event to each topic waits up to a second for its metadata, and
    with it the transaction that carries it: a cold start costs every hop a second."""
    for topic in topics:
        producer.list_topics(topic, timeout=KAFKA_STEP_TIMEOUT)


def as_topic_partitions(positions: Positions) -> list[TopicPartition]:
    return [
        TopicPartition(topic, partition, offset) for (topic, partition), offset in positions.items()
    ]


def printable_key(key: bytes | None) -> str:
    return "" if key is None else key.decode("utf-8", errors="replace")
