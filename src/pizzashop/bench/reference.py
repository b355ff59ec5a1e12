"""The reference chain: the shop's four hops as bare pass-throughs, to know the practical limit.

Each hop copies every record from one `bench-ref-*` topic to the next with the runtime's own
Kafka clients, batch size, loop and commit (a transaction per batch under exactly_once), but
no kitchen, no decoding, no handler. What the shop adds on top of this chain is its own cost.
Each hop runs in a process of its own (`pizzashop.bench.hop`), like the shop's services.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from confluent_kafka import KafkaException, Message

from pizzashop import contract
from pizzashop.config import Settings
from pizzashop.kafka.records import record_position
from pizzashop.runtime.loop import ServiceLoop
from pizzashop.runtime.producing import OutgoingRecord

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
    transaction, under at_least_once once every record is acknowledged)."""

    positions: dict[tuple[str, int], int]
    unacknowledged: int

    def acknowledge(self) -> None:
        self.unacknowledged -= 1


class PassThrough(ServiceLoop):
    """One hop: the runtime's clients, loop and commit policies, and a bare take."""

    def __init__(self, settings: Settings, name: str, source: str, target: str) -> None:
        super().__init__(name, [source], settings)
        self.transactional = self.read_committed  # a transaction per batch, as the kitchen's
        self.target = target
        self._batches: deque[_Batch] = deque()
        self._uncommitted: dict[tuple[str, int], int] = {}

    def output_topics(self) -> list[str]:
        return [self.target]

    def take(self, messages: list[Message]) -> None:
        messages = [m for m in messages if not _is_error(m)]
        if not messages:
            return
        records = [self._passed_on(m) for m in messages]
        if self.commits.finishes_on_send:
            self._batches.append(_Batch(_next_positions(messages), 0))
            self.commits.send(records, on_delivered=None)
        else:
            batch = _Batch(_next_positions(messages), len(messages))
            self._batches.append(batch)
            self.commits.send(
                records, on_delivered=batch.acknowledge
            )  # a failed send is sent again

    def _passed_on(self, message: Message) -> OutgoingRecord:
        _, partition, _ = record_position(message)
        return OutgoingRecord(self.target, message.key(), message.value(), partition)

    def commit_work(self, synchronous: bool = False) -> None:
        while self._batches and self._batches[0].unacknowledged == 0:
            self._uncommitted.update(self._batches.popleft().positions)
        if self.commits.commit(self._uncommitted, synchronous):
            self._uncommitted = {}

    def forget_work(self, partitions: list[tuple[str, int]]) -> None:
        self._batches.clear()
        self._uncommitted = {}


def _is_error(message: Message) -> bool:
    error = message.error()
    if error is not None and error.fatal():
        raise KafkaException(error)  # run() starts over from the last commit
    return error is not None


def _next_positions(messages: list[Message]) -> dict[tuple[str, int], int]:
    positions = map(record_position, messages)
    return {(topic, partition): offset + 1 for topic, partition, offset in positions}
