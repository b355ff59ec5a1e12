"""What a kind of service does with the batches its loop reads (`ServiceWork`): a kitchen's
in kitchen_work.py, a sink's in sink_work.py, the bench's pass-through hop. The loop
(loop.py) is written once against it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from confluent_kafka import Message, TopicPartition

from pizzashop.observe.metrics import ServiceMetrics
from pizzashop.runtime.checkpoint import Checkpoint
from pizzashop.runtime.clients import ConsumerLike, TopicAdmin
from pizzashop.runtime.problems import ProblemLog
from pizzashop.runtime.producing import ProducerSetup, Retry

BATCH_SIZE = 500  # events taken at most per turn
IDLE_POLL_SECONDS = 0.1
Source = tuple[str, int]


class ServiceWork(Protocol):
    """What a kind of service does with the batches its loop reads."""

    @property
    def name(self) -> str: ...
    @property
    def consumes(self) -> Sequence[str]: ...
    @property
    def output_topics(self) -> Sequence[str]: ...
    @property
    def batch_size(self) -> int:
        """Events taken at most per turn."""

    @property
    def metrics(self) -> ServiceMetrics: ...
    @property
    def problems(self) -> ProblemLog: ...

    def prepare(self, admin: TopicAdmin, retry: Retry) -> None:
        """Before the clients are made: what must be so first (the kitchen's topics)."""

    def connect(self, consumer: ConsumerLike, producing: ProducerSetup) -> Checkpoint[Any]:
        """The clients are made: its checkpoint, with the producer its guarantee wants."""

    def take(self, messages: list[Message], now: float) -> None:
        """Do the service's work on a batch (possibly empty)."""

    def poll_timeout(self, now: float) -> float: ...

    def after_turn(self, now: float) -> None:
        """What it does once a turn besides its work: back-pressure, timers."""

    def assigned(self, partitions: list[TopicPartition]) -> None: ...

    def revoked(self, partitions: list[Source]) -> None: ...

    def forget(self, partitions: list[Source]) -> None:
        """Before reading again from the last commit: drop what was taken since."""

    def last_commit(
        self, consumer: ConsumerLike, partitions: list[TopicPartition]
    ) -> list[TopicPartition]:
        """Where its last commit left each partition: the group's committed offsets for a
        kitchen, the offsets stored with the read model for a sink."""

    def in_the_works(self) -> int: ...

    def close(self) -> None: ...
