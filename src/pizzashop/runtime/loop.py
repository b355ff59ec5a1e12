"""The loop every service runs, written once: poll a batch, hand it over, produce, commit.

`ServiceLoop` owns the Kafka clients and everything that happens to them: subscribing,
rebalances, a broker that goes away (start over from the last commit), a stop on SIGTERM.
What a batch means is the business of a subclass: `KitchenLoop` (kitchen.py's work, run
by handlers) or `SinkLoop` (batches written to a store), or the bench's pass-through hop.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.contract import ContractError
from pizzashop.kafka.reaching import broker_address, refusal
from pizzashop.kafka.records import record_headers, record_position
from pizzashop.kafka.topics import SHOP_TOPIC_NAMES
from pizzashop.observe import tracing
from pizzashop.observe.health import GroupView, Readiness, service_readiness
from pizzashop.observe.metrics import ServiceMetrics
from pizzashop.runtime.clients import consumer_config, reads_committed
from pizzashop.runtime.kitchen import Ticket
from pizzashop.runtime.problems import (
    KAFKA_STEP_TIMEOUT,
    Backoff,
    ProblemLog,
    StoppedWaiting,
    keep_trying,
)
from pizzashop.runtime.producing import (
    Acknowledgements,
    CommitPolicy,
    ProducerSetup,
    Transactions,
    printable_key,
)
from pizzashop.runtime.wedge import TransactionWatch

log = logging.getLogger("pizzashop.runtime")

T = TypeVar("T")
IDLE_POLL_SECONDS = 0.1
OUTPUT_TOPIC_NAMES = list(SHOP_TOPIC_NAMES)


class ServiceLoop:
    batch_size = 500  # events taken at most per turn
    transactional = False  # whether its commits are Kafka transactions (under exactly_once)

    def __init__(self, name: str, consumes: Sequence[str], settings: Settings) -> None:
        self.name, self.consumes, self.settings = name, tuple(consumes), settings
        self.read_committed = reads_committed(settings)
        self.problems = ProblemLog()
        self.watch = TransactionWatch()  # exits the process if a transactional call hangs
        self.assigned: frozenset[tuple[str, int]] = frozenset()
        self.consumer: Consumer
        self.commits: CommitPolicy
        self.metrics = ServiceMetrics(name, settings.metrics)
        self.group_view: GroupView | None = None  # the consumer's last statistics
        self._stopping = threading.Event()
        self._backoff = Backoff()
        self._must_rewind = False
        self._raised_in_callback: Exception | None = None  # see _assigned and _revoked

    # --- what a kind of loop adds --------------------------------------------------------------

    def output_topics(self) -> list[str]:
        return OUTPUT_TOPIC_NAMES

    def take(self, messages: list[Message]) -> None:
        """Do the service's work on a batch (possibly empty)."""

    def commit_work(self, synchronous: bool = False) -> None:
        """Produce what is done and commit the positions it came from."""

    def poll_timeout(self, now: float) -> float:
        return IDLE_POLL_SECONDS

    def partitions_assigned(self, partitions: list[TopicPartition]) -> None: ...

    def partitions_revoked(self, partitions: list[tuple[str, int]]) -> None: ...

    def forget_work(self, partitions: list[tuple[str, int]]) -> None:
        """Before reading again from the last commit: drop what was taken since."""

    def after_turn(self) -> None:
        """What a loop does once a turn besides its work: back-pressure, timers."""

    def closed(self) -> None: ...

    def orders_in_the_works(self) -> int:
        return 0

    # --- what it shows of itself (read from the observe server's thread) ----------------------

    def readiness(self) -> Readiness:
        return service_readiness(
            self.name, self.group_view, self.problems.active(), self.orders_in_the_works()
        )

    def _stats(self, stats_json: str) -> None:
        # Called by librdkafka from within consume(): an exception here would break that call
        # ("returned NULL without setting an exception"), so none may leave it.
        try:
            self.group_view = GroupView.from_stats(stats_json, self.read_committed)
            self.metrics.lag(self.group_view.lag)
        except Exception:
            log.debug("Could not read the Kafka client's statistics", exc_info=True)

    # --- lifecycle -----------------------------------------------------------------------------

    def stop_on_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            self.connect()
        except (KafkaException, StoppedWaiting):
            if not self._stopping.is_set():
                raise
            log.info("Stopped while waiting for Kafka, before connecting")  # SIGTERM, not a crash
            return
        try:
            while not self._stopping.is_set():
                try:
                    self.turn()
                except KafkaException as e:
                    self._start_over(e.args[0])
                except StoppedWaiting:
                    break  # stopped while a step waited; what is done is committed below
        finally:
            self._shut_down()

    def connect(self) -> None:
        self.consumer = Consumer(
            consumer_config(self.settings, self.name, self._client_error, self._stats)
        )
        policy = Transactions if self.transactional else Acknowledgements
        setup = ProducerSetup(
            self.settings, self.name, self.output_topics(), self.problems, self.retry, self.watch
        )
        self.commits = policy(setup, self.consumer)
        self.consumer.subscribe(
            list(self.consumes), on_assign=self._assigned, on_revoke=self._revoked
        )
        log.info("Subscribed to topic(s): %s", ", ".join(self.consumes))

    def turn(self) -> None:
        if self._must_rewind:
            # Work dropped after a failure is redone from the last commit, never skipped: until
            # the rewind has worked, nothing more is read (a KafkaException starts over again).
            self._rewind()
            self._must_rewind = False
        messages = self.next_batch(self.poll_timeout(time.monotonic()))
        if messages:
            # An error event may name no topic: "None", as prometheus-client labels it anyway.
            self.metrics.consumed(str(m.topic()) for m in messages)
        self.take(messages)
        self.commits.producer.poll(0)
        self.commit_work()
        self.after_turn()
        self.metrics.flush()
        self.problems.clear("kafka")

    def next_batch(self, timeout: float) -> list[Message]:
        """What has arrived, up to a batch; waits up to `timeout` only when nothing has.

        (consume(n, timeout) alone would wait for n messages or the whole timeout, adding
        that wait to every hop of an order while the shop is quiet.)
        """
        messages: list[Message] = self._consume(self.batch_size, 0)
        if messages:
            return messages
        first: list[Message] = self._consume(1, timeout)
        return first + self._consume(self.batch_size - 1, 0) if first else first

    def _consume(self, up_to: int, timeout: float) -> list[Message]:
        """consume(), then whatever a rebalance callback raised inside it, raised here."""
        messages: list[Message] = self.consumer.consume(up_to, timeout)
        raised, self._raised_in_callback = self._raised_in_callback, None
        if raised is not None:
            raise raised
        return messages

    def retry(self, what: str, action: Callable[[], T], where: str | None = None) -> T:
        """`action()` until it works or the service stops; `where` names what it waits for
        (the Kafka broker, by default) in the line logged at the first failure."""
        if where is None:
            where = f"the Kafka broker at {broker_address(self.settings)}"
        return keep_trying(what, action, self.problems, self._stopping, f" ({where})")

    def _shut_down(self) -> None:
        try:
            self.commits.settle()  # acknowledgements arrive, so finished work is committed
            self.commit_work(synchronous=True)
        except KafkaException as e:
            log.warning("Could not commit on the way out (the next owner redoes it): %s", e)
        self.consumer.close()  # leaves the group now, so its partitions move at once
        self.commits.producer.flush(10)
        self.closed()
        log.info("Stopped")

    # --- failures and rebalances ---------------------------------------------------------------

    def _start_over(self, error: KafkaError) -> None:
        """After a Kafka failure: drop the uncommitted work (and the open transaction, or the
        producer if it cannot go on) and redo everything since the last commit. Failing again
        only means waiting and starting over once more: a service never dies of a broker problem."""
        self.problems.report("kafka", f"Kafka failed ({error}): starting over from the last commit")
        self.metrics.started_over()
        self._must_rewind = True  # before anything more is read: see turn()
        try:
            self.commits.start_over(error)
        except KafkaException as again:
            log.debug("Starting over failed too (%s); trying again shortly", again)
            self._stopping.wait(self._backoff.next())
        else:
            self._backoff.reset()

    def _rewind(self) -> None:
        """Back to the last commit. Its offsets are asked for first: should the broker not
        answer, nothing has been forgotten and the next turn asks again."""
        assigned = self.consumer.assignment()
        committed = self.consumer.committed(assigned, KAFKA_STEP_TIMEOUT)
        self.forget_work([(tp.topic, tp.partition) for tp in assigned])
        for tp in committed:
            self.consumer.seek(
                TopicPartition(tp.topic, tp.partition, max(tp.offset, OFFSET_BEGINNING))
            )

    # librdkafka calls these from within consume(): an exception leaving one would break that
    # call ("returned NULL without setting an exception") and lose what it was, so each keeps
    # what it raised for `_consume` to raise in the loop, where it is handled as any other.
    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("Assigned %s", _describe(partitions))
        self.assigned = self.assigned | {(tp.topic, tp.partition) for tp in partitions}
        try:
            self.partitions_assigned(partitions)
        except Exception as e:
            self._keep_raised(e)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("Revoked %s", _describe(partitions))
        try:
            self.commits.settle()  # acknowledgements arrive, so finished work is committed
            self.commit_work(synchronous=True)
        except KafkaException as e:
            log.warning("Could not commit before handing partitions over: %s", e)
        except Exception as e:
            self._keep_raised(e)
        gone = [(tp.topic, tp.partition) for tp in partitions]
        self.assigned = self.assigned - set(gone)
        self.partitions_revoked(gone)

    def _keep_raised(self, error: Exception) -> None:
        if not isinstance(error, KafkaException):  # a Kafka failure is said by the start-over
            log.error("Failed in a rebalance: %r", error, exc_info=error)
        if self._raised_in_callback is None:
            self._raised_in_callback = error

    def _client_error(self, error: KafkaError) -> None:
        # Fatal errors also surface from the call that meets them, which decides what to do.
        # Refused credentials or an untrusted certificate are said plainly, once.
        line = refusal(error, broker_address(self.settings), self.settings)
        self.problems.report("client", line or str(error))


def ticket_of(message: Message, problems: ProblemLog) -> Ticket | None:
    """A consumed record as the kitchen and the sink take it: decoded, or with why it is not."""
    error = message.error()
    if error is not None:
        if error.fatal():
            raise KafkaException(error)
        problems.report("consume", str(error))
        return None
    problems.clear("consume")
    topic, partition, offset = record_position(message)
    key, value = message.key(), message.value()
    _, timestamp = message.timestamp()
    try:
        event: contract.Event | None = contract.decode(topic, key, value, timestamp)
        reason = None
    except ContractError as e:
        event, reason = None, str(e)
    return Ticket(
        topic=topic,
        partition=partition,
        offset=offset,
        key=printable_key(key),
        event=event,
        raw_key=key,
        raw_value=value,
        error=reason,
        headers=record_headers(message) if tracing.enabled() else None,
    )


def _describe(partitions: list[TopicPartition]) -> str:
    if not partitions:
        return "no partitions"
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
