"""The reference chain: the shop's four hops as bare pass-throughs, to know the practical limit.

Each hop copies every record from one `bench-ref-*` topic to the next with the runtime's own
Kafka clients, batch size, loop and commit (a transaction per batch under exactly_once), but
no kitchen, no decoding, no handler. What the shop adds on top of this chain is its own cost.
Each hop runs in a process of its own (`pizzashop.bench.hop`), like the shop's services.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from confluent_kafka import KafkaException, Message, TopicPartition

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.kafka.records import record_position
from pizzashop.observe.metrics import ServiceMetrics
from pizzashop.runtime.checkpoint import Cadence, Checkpoint
from pizzashop.runtime.clients import ConsumerLike, TopicAdmin, reads_committed
from pizzashop.runtime.problems import KAFKA_STEP_TIMEOUT, ProblemLog
from pizzashop.runtime.producing import OutgoingRecord, ProducerSetup, Retry, commit_policy
from pizzashop.runtime.work import BATCH_SIZE, IDLE_POLL_SECONDS

STAGES = ("ordered", "assembled", "baked", "status", "delivered")
# Hop i copies STAGES[i] to STAGES[i + 1]; "status" stands for the status service, whose
# read model the bench watches in the shop, as it watches "delivered" here.
HOPS = ("assemble", "bake", "delivery", "status")


@dataclass(frozen=True)
class Chain:
    """The topics and groups of one bench run's chain of hops (the reference's, or a peer's)."""

    label: str  # "ref", or a peer's: keeps the chains of one run apart
    run_id: str

    def topic(self, stage: str) -> str:
        return f"bench-{self.label}-{self.run_id}-{stage}"

    @property
    def topics(self) -> list[str]:
        return [self.topic(stage) for stage in STAGES]

    def hop_name(self, hop: str) -> str:
        return f"bench-{self.label}-{self.run_id}-{hop}"

    def hops(self) -> list[tuple[str, str, str]]:
        """(name, source topic, target topic) of each hop."""
        return [
            (self.hop_name(hop), self.topic(STAGES[i]), self.topic(STAGES[i + 1]))
            for i, hop in enumerate(HOPS)
        ]

    def group_of(self, hop_name: str) -> str:
        return contract.group_id(hop_name)


@dataclass
class _Batch:
    """A batch forwarded: its positions are committed once all of it is out (at once in a
    transaction, under at_least_once once every record is acknowledged), and those of the
    batches before it."""

    positions: dict[tuple[str, int], int]
    out: bool = False


class PassThrough:
    """One hop: the runtime's clients, loop and checkpoint, and a bare take."""

    batch_size = BATCH_SIZE

    def __init__(self, settings: Settings, name: str, source: str, target: str) -> None:
        self.name, self.consumes, self.output_topics = name, (source,), (target,)
        self.settings, self.target = settings, target
        self.metrics, self.problems = ServiceMetrics(name, settings.metrics), ProblemLog()
        self._batches: deque[_Batch] = deque()
        self._out: dict[tuple[str, int], int] = {}
        self._checkpoint: Checkpoint[_Batch]

    def prepare(self, admin: TopicAdmin, retry: Retry) -> None:
        pass  # the bench made its topics

    def connect(self, consumer: ConsumerLike, producing: ProducerSetup) -> Checkpoint[_Batch]:
        # A transaction per batch under exactly_once, as the kitchen's.
        policy = commit_policy(reads_committed(self.settings), producing, consumer, _sent)
        self._checkpoint = Checkpoint(policy, consumer, Cadence(), self._finished, frozenset)
        return self._checkpoint

    def take(self, messages: list[Message], now: float) -> None:
        messages = [m for m in messages if not _is_error(m)]
        if not messages:
            return
        batch = _Batch(_next_positions(messages))
        self._batches.append(batch)
        self._checkpoint.send([self._passed_on(m) for m in messages], batch)

    def _passed_on(self, message: Message) -> OutgoingRecord:
        _, partition, _ = record_position(message)
        return OutgoingRecord(self.target, message.key(), message.value(), partition)

    def _finished(self) -> dict[tuple[str, int], int]:
        while self._batches and self._batches[0].out:
            self._out.update(self._batches.popleft().positions)
        return dict(self._out)

    def poll_timeout(self, now: float) -> float:
        return IDLE_POLL_SECONDS

    def after_turn(self, now: float) -> None:
        pass

    def assigned(self, partitions: list[TopicPartition]) -> None:
        pass

    def revoked(self, partitions: list[tuple[str, int]]) -> None:
        pass

    def last_commit(
        self, consumer: ConsumerLike, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        return consumer.committed(partitions, KAFKA_STEP_TIMEOUT)

    def forget(self, partitions: list[tuple[str, int]]) -> None:
        self._batches.clear()
        self._out = {}

    def in_the_works(self) -> int:
        return len(self._batches)

    def close(self) -> None:
        pass


def _sent(batch: _Batch) -> None:
    batch.out = True


def _is_error(message: Message) -> bool:
    error = message.error()
    if error is not None and error.fatal():
        raise KafkaException(error)  # run() starts over from the last commit
    return error is not None


def _next_positions(messages: list[Message]) -> dict[tuple[str, int], int]:
    positions = map(record_position, messages)
    return {(topic, partition): offset + 1 for topic, partition, offset in positions}
