"""The loop every service runs, written once: read a batch, hand it to the work, commit.

`ServiceLoop` is assembled from parts: the service's work (`ServiceWork`, work.py: a kitchen's
in kitchen_work.py, a sink's in sink_work.py, the bench's pass-through hop), the checkpoint that
commits it (checkpoint.py), and the Kafka clients, made by the factories it is given
(clients.py). It owns what happens to the clients: subscribing, rebalances, a broker that
goes away (start over from the last commit), a stop on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from pizzashop.config import Settings
from pizzashop.kafka.reaching import broker_address, refusal
from pizzashop.observe.health import GroupView, Readiness, service_readiness
from pizzashop.runtime.checkpoint import Checkpoint
from pizzashop.runtime.clients import (
    KAFKA,
    Clients,
    ConsumerLike,
    assigns_incrementally,
    consumer_config,
    reads_committed,
)
from pizzashop.runtime.problems import Backoff, StoppedWaiting, keep_trying
from pizzashop.runtime.producing import ProducerSetup
from pizzashop.runtime.wedge import TransactionWatch
from pizzashop.runtime.work import ServiceWork, Source

log = logging.getLogger("pizzashop.runtime")

T = TypeVar("T")


class ServiceLoop:
    """One service's loop: its work, its settings, the factories of its Kafka clients, and
    (a stand-in in tests) the clock its timers read."""

    def __init__(
        self,
        work: ServiceWork,
        settings: Settings,
        clients: Clients = KAFKA,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.work, self.settings, self.clients, self.clock = work, settings, clients, clock
        self.name, self.metrics, self.problems = work.name, work.metrics, work.problems
        self.read_committed = reads_committed(settings)
        self.watch = TransactionWatch()  # exits the process if a transactional call hangs
        self.assigned: frozenset[Source] = frozenset()
        self.restored = 0  # of the partitions assigned, those whose state is rebuilt
        self.group_view: GroupView | None = None  # the consumer's last statistics
        self._checkpoint: Checkpoint[Any] | None = None
        self._stopping = threading.Event()
        self._backoff = Backoff()
        self._must_rewind = False
        self._raised_in_callback: Exception | None = None  # see _assigned and _revoked

    # --- what it shows of itself (read from the observe server's thread) ----------------------

    def readiness(self) -> Readiness:
        return service_readiness(
            self.name,
            self.group_view,
            self.problems.active(),
            self.work.in_the_works(),
            partitions_restored=self.restored,
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
            consumer, checkpoint = self.connect()
        except (KafkaException, StoppedWaiting):
            if not self._stopping.is_set():
                raise
            log.info("Stopped while waiting for Kafka, before connecting")  # SIGTERM, not a crash
            return
        try:
            while not self._stopping.is_set() and self.step(consumer, checkpoint):
                pass
        finally:
            self.shut_down(consumer, checkpoint)

    def connect(self) -> tuple[ConsumerLike, Checkpoint[Any]]:
        self.work.prepare(self.clients.admin(self.settings), self.retry)
        config = consumer_config(self.settings, self.name, self._client_error, self._stats)
        consumer = self.clients.consumer(config)
        producing = ProducerSetup(
            self.settings,
            self.name,
            self.work.output_topics,
            self.problems,
            self.retry,
            self.watch,
            self.clients.producer,
        )
        self._checkpoint = checkpoint = self.work.connect(consumer, producing)
        consumer.subscribe(
            list(self.work.consumes),
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._lost,
        )
        log.info("Subscribed to topic(s): %s", ", ".join(self.work.consumes))
        return consumer, checkpoint

    def step(self, consumer: ConsumerLike, checkpoint: Checkpoint[Any]) -> bool:
        """A turn, and after a Kafka failure a start over; False once stopped while waiting
        (what is done is committed on the way out)."""
        try:
            self.turn(consumer, checkpoint)
        except KafkaException as e:
            self._start_over(checkpoint, e.args[0])
        except StoppedWaiting:
            return False
        return True

    def turn(self, consumer: ConsumerLike, checkpoint: Checkpoint[Any]) -> None:
        if self._must_rewind:
            # Work dropped after a failure is redone from the last commit, never skipped: until
            # the rewind has worked, nothing more is read (a KafkaException starts over again).
            self._rewind(consumer)
            self._must_rewind = False
        now = self.clock()
        due = checkpoint.seconds_until_due(now)
        timeout = self.work.poll_timeout(now)
        messages = self.next_batch(consumer, timeout if due is None else min(timeout, due))
        if messages:
            # An error event may name no topic: "None", as prometheus-client labels it anyway.
            self.metrics.consumed(str(m.topic()) for m in messages)
        now = self.clock()
        checkpoint.arrived(len(messages), len(messages) >= self.work.batch_size, now)
        self.work.take(messages, now)
        checkpoint.producer.poll(0)
        checkpoint.commit(now)
        self.work.after_turn(now)
        self.metrics.flush()
        self.problems.clear("kafka")

    def next_batch(self, consumer: ConsumerLike, timeout: float) -> list[Message]:
        """What has arrived, up to a batch; waits up to `timeout` only when nothing has.

        (consume(n, timeout) alone would wait for n messages or the whole timeout, adding
        that wait to every hop of an order while the shop is quiet.)
        """
        batch_size = self.work.batch_size
        messages = self._consume(consumer, batch_size, 0)
        if messages:
            return messages
        first = self._consume(consumer, 1, timeout)
        return first + self._consume(consumer, batch_size - 1, 0) if first else first

    def _consume(self, consumer: ConsumerLike, up_to: int, timeout: float) -> list[Message]:
        """consume(), then whatever a rebalance callback raised inside it, raised here."""
        messages = consumer.consume(up_to, timeout)
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

    def shut_down(self, consumer: ConsumerLike, checkpoint: Checkpoint[Any]) -> None:
        try:
            checkpoint.settle()  # acknowledgements arrive, so finished work is committed
            checkpoint.commit(self.clock(), forced=True)
        except KafkaException as e:
            log.warning("Could not commit on the way out (the next owner redoes it): %s", e)
        consumer.close()  # leaves the group now, so its partitions move at once
        checkpoint.producer.flush(10)
        self.work.close()
        log.info("Stopped")

    # --- failures and rebalances ---------------------------------------------------------------

    def _start_over(self, checkpoint: Checkpoint[Any], error: KafkaError) -> None:
        """After a Kafka failure: drop the uncommitted work (and the open transaction, or the
        producer if it cannot go on) and redo everything since the last commit. Failing again
        only means waiting and starting over once more: a service never dies of a broker problem."""
        self.problems.report("kafka", f"Kafka failed ({error}): starting over from the last commit")
        self.metrics.started_over()
        self._must_rewind = True  # before anything more is read: see turn()
        try:
            checkpoint.start_over(error)
        except KafkaException as again:
            log.debug("Starting over failed too (%s); trying again shortly", again)
            self._stopping.wait(self._backoff.next())
        else:
            self._backoff.reset()

    def _rewind(self, consumer: ConsumerLike) -> None:
        """Back to the last commit. Its offsets are asked for first: should the broker not
        answer, nothing has been forgotten and the next turn asks again."""
        assigned = consumer.assignment()
        starting = self._where_the_last_commit_left(consumer, assigned)
        self.work.forget([(tp.topic, tp.partition) for tp in assigned])
        for tp in starting:
            consumer.seek(tp)
        self.restored = len(assigned)

    def _where_the_last_commit_left(
        self, consumer: ConsumerLike, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        """Each partition's committed offset (its start if none), or a partition's own error
        raised, to be asked again."""
        committed = _answered(self.work.last_commit(consumer, partitions))
        return [
            TopicPartition(tp.topic, tp.partition, max(tp.offset, OFFSET_BEGINNING))
            for tp in committed
        ]

    # librdkafka calls these from within consume(): an exception leaving one would break that
    # call ("returned NULL without setting an exception") and lose what it was, so each keeps
    # what it raised for `_consume` to raise in the loop, where it is handled as any other.
    def _assigned(self, consumer: ConsumerLike, partitions: list[TopicPartition]) -> None:
        log.info("Assigned %s", _describe(partitions))
        self.assigned = self.assigned | {(tp.topic, tp.partition) for tp in partitions}
        # The last commit is asked for before the state is restored. A transaction of the last
        # owner (paused past its session, its offsets already with the group) may still end
        # in a commit; Kafka answers the ask only once it has ended (offsets asked for under
        # read_committed are stable ones), so the restore that follows reads what it wrote.
        starting: list[TopicPartition] = []
        asked = self._kept_raising(
            lambda: starting.extend(self._asked_until_answered(consumer, partitions))
        )
        if not asked:
            return  # stopping, or raised for the loop
        # Assigned from the last commit even when the restore failed: the loop then starts over,
        # restores again and seeks, which needs partitions the client is reading.
        restored = self._kept_raising(lambda: self.work.assigned(partitions))
        assigned = self._kept_raising(lambda: self._assign(consumer, starting))
        if restored and assigned:
            self.restored = len(self.assigned)

    def _kept_raising(self, step: Callable[[], None]) -> bool:
        """`step()`, what it raises kept for the loop (see above); whether it worked."""
        try:
            step()
        except StoppedWaiting:
            return False  # stopping: the loop ends after this turn
        except Exception as e:
            self._keep_raised(e)
            return False
        return True

    def _asked_until_answered(
        self, consumer: ConsumerLike, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        """Where the last commit left each partition, asked for here and retried until
        answered, rather than left to librdkafka: its own ask, answered "not coordinator" as a
        whole while the group's coordinator moves, leaves the partition unread for good
        (librdkafka issue 5586)."""
        if not partitions:
            return []
        return self.retry(
            "find where the last commit left the partitions assigned",
            lambda: self._where_the_last_commit_left(consumer, partitions),
        )

    def _assign(self, consumer: ConsumerLike, starting: list[TopicPartition]) -> None:
        if not starting:
            return
        if assigns_incrementally(self.settings):  # the partitions handed over are added
            consumer.incremental_assign(starting)
        else:  # the partitions handed over are the whole assignment
            consumer.assign(starting)

    def _revoked(self, consumer: object, partitions: list[TopicPartition]) -> None:
        log.info("Revoked %s", _describe(partitions))
        if self._checkpoint is not None:
            try:
                self._checkpoint.settle()  # acknowledgements arrive, so finished work is committed
                self._checkpoint.commit(self.clock(), forced=True)
            except KafkaException as e:
                log.warning("Could not commit before handing partitions over: %s", e)
            except Exception as e:
                self._keep_raised(e)
        self._let_go(partitions)

    def _lost(self, consumer: object, partitions: list[TopicPartition]) -> None:
        """Taken while this instance could not answer (paused, or cut off, past its session):
        their new owner may have read the last commit and restored its state already, so what
        is not committed is dropped, never committed now. A late commit would land behind that
        owner's back: its work done twice, or (the pantry's ask) its state missing an order."""
        log.warning(
            "Lost %s (out of touch with the group past the session, so they may be another "
            "instance's now): dropping what is not committed",
            _describe(partitions),
        )
        if self._checkpoint is not None:
            checkpoint = self._checkpoint
            self._kept_raising(
                lambda: checkpoint.start_over(KafkaError(KafkaError._ASSIGNMENT_LOST))
            )
        self._let_go(partitions)

    def _let_go(self, partitions: list[TopicPartition]) -> None:
        gone = [(tp.topic, tp.partition) for tp in partitions]
        if self._checkpoint is not None:
            self._checkpoint.forget(gone)
        self.assigned = self.assigned - set(gone)
        self.restored = min(self.restored, len(self.assigned))
        self.work.revoked(gone)

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


def _answered(offsets: list[TopicPartition]) -> list[TopicPartition]:
    """The offsets, or the first partition's own error raised (to be asked again)."""
    for tp in offsets:
        if tp.error is not None:
            raise KafkaException(tp.error)
    return offsets


def _describe(partitions: list[TopicPartition]) -> str:
    if not partitions:
        return "no partitions"
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
