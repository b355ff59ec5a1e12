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

from pizzashop.config import Settings, kafka_client_config
from pizzashop.runtime import IDLE_POLL_SECONDS, OutgoingRecord, Service, ServiceRunner

STAGES = ("ordered", "assembled", "baked", "status", "delivered")
# Hop i copies STAGES[i] to STAGES[i + 1]; "status" stands for the status service, whose
# read model the bench watches in the shop, as it watches "delivered" here.
HOPS = ("assemble", "bake", "delivery", "status")


@dataclass(frozen=True)
class ReferenceChain:
    """The topics and groups of one bench run's reference chain."""

    run_id: str

    def topic(self, stage: str) -> str:
        return f"bench-ref-{self.run_id}-{stage}"

    @property
    def topics(self) -> list[str]:
        return [self.topic(stage) for stage in STAGES]

    def hop_name(self, hop: str) -> str:
        return f"bench-ref-{self.run_id}-{hop}"

    def hops(self) -> list[tuple[str, str, str]]:
        """(name, source topic, target topic) of each hop."""
        return [(self.hop_name(hop), self.topic(STAGES[i]), self.topic(STAGES[i + 1]))
                for i, hop in enumerate(HOPS)]

    def group_of(self, hop_name: str) -> str:
        return Service(name=hop_name, consumes=()).group_id


@dataclass
class _Batch:
    """A batch forwarded under at_least_once: its offsets are committed once all are acknowledged."""

    positions: list[TopicPartition]
    unacknowledged: int

    def acknowledge(self) -> None:
        self.unacknowledged -= 1


class PassThrough(ServiceRunner):
    """One hop: the runtime's clients and loop (connect, start over, shut down), a bare step."""

    def __init__(self, settings: Settings, name: str, source: str, target: str) -> None:
        super().__init__(Service(name=name, consumes=(source,)), settings)  # type: ignore[arg-type]
        self.target = target
        self._batches: deque[_Batch] = deque()

    @classmethod
    def consumer_config(cls, settings: Settings, name: str) -> dict[str, object]:
        """The runtime's consumer settings (isolation, fetch wait, ...) for a reader of the chain."""
        return cls(settings, name, "", "")._consumer_config(kafka_client_config(settings))

    def _output_topics(self) -> list[str]:
        return [self.target]

    def step(self) -> None:
        messages = [m for m in self._next_batch(IDLE_POLL_SECONDS) if not self._is_error(m)]
        records = [OutgoingRecord(self.target, m.key(), m.value(), m.partition()) for m in messages]
        if messages and self.transactional:
            self._send(records, on_delivered=None)
            self._commit_transaction(_next_positions(messages))
        elif messages:
            batch = _Batch(_next_positions(messages), len(messages))
            self._batches.append(batch)
            self._send(records, on_delivered=batch.acknowledge)  # a failed send is sent again
        self.producer.poll(0)
        self._commit_acknowledged()

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is not None and error.fatal():
            raise KafkaException(error)  # run() starts over from the last commit
        return error is not None

    def _commit_acknowledged(self) -> None:
        positions: dict[tuple[str, int], int] = {}
        while self._batches and self._batches[0].unacknowledged == 0:
            for tp in self._batches.popleft().positions:
                positions[(tp.topic, tp.partition)] = tp.offset
        if positions:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
                                 asynchronous=True)

    def _rewind(self) -> None:
        self._batches.clear()
        super()._rewind()


def _next_positions(messages: list[Message]) -> list[TopicPartition]:
    positions: dict[tuple[str, int], int] = {}
    for m in messages:
        positions[(m.topic(), m.partition())] = m.offset() + 1
    return [TopicPartition(t, p, o) for (t, p), o in positions.items()]

