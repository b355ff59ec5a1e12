"""The order of a transaction's calls to the producer, with stand-ins for the Kafka clients."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from pizzashop.config import Settings
from pizzashop.contract import Topic
from pizzashop.runtime import sink_loop
from pizzashop.runtime.loop import ServiceLoop
from pizzashop.runtime.problems import ProblemLog
from pizzashop.runtime.producing import OutgoingRecord, ProducerSetup, Transactions
from pizzashop.runtime.sink_loop import SinkLoop
from pizzashop.service import SinkService


class RecordingProducer:
    """Notes each call; send_offsets_to_transaction fails while `turned_away` is above 0."""

    def __init__(self, turned_away: int = 0) -> None:
        self.calls: list[str] = []
        self.turned_away = turned_away

    def init_transactions(self, timeout: float) -> None:
        pass

    def list_topics(self, topic: str, timeout: float) -> None:
        pass

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], metadata: Any, timeout: float
    ) -> None:
        self.calls.append("offsets")
        if self.turned_away:
            self.turned_away -= 1
            raise KafkaException(
                KafkaError(KafkaError.REQUEST_TIMED_OUT, "timed out", retriable=True)
            )

    def produce(self, topic: str, **_: Any) -> None:
        self.calls.append(f"produce {topic}")

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")


class GroupMember:
    def consumer_group_metadata(self) -> object:
        return object()


def transactions(producer: RecordingProducer) -> Transactions:
    setup = ProducerSetup(
        Settings(processing_guarantee="exactly_once", log_level="WARNING"),
        "assemble",
        [],
        ProblemLog(),
        retry=lambda what, action: action(),
        make_producer=lambda config: producer,
    )
    return Transactions(setup, GroupMember())


def records(*topics: str) -> list[OutgoingRecord]:
    return [OutgoingRecord(topic, b"order-1", b"{}") for topic in topics]


def test_a_transactions_records_are_produced_after_its_offsets_are_in() -> None:
    producer = RecordingProducer()
    commits = transactions(producer)

    commits.send(records("pizza-assembled", "pizza-status"), on_delivered=None)
    commits.commit({("pizza-ordered", 0): 8})

    assert producer.calls == [
        "begin",
        "offsets",
        "produce pizza-assembled",
        "produce pizza-status",
        "commit",
    ]


def test_records_held_by_a_commit_that_failed_go_out_with_the_next_try() -> None:
    producer = RecordingProducer(turned_away=1)
    commits = transactions(producer)

    commits.send(records("pizza-assembled"), on_delivered=None)
    assert not commits.commit({("pizza-ordered", 0): 8}), "turned away: to be tried again"
    assert "produce pizza-assembled" not in producer.calls  # the transaction stays open

    commits.send(records("pizza-status"), on_delivered=None)
    commits.commit({("pizza-ordered", 0): 9})

    assert producer.calls == [
        "begin",
        "offsets",
        "offsets",
        "produce pizza-assembled",
        "produce pizza-status",
        "commit",
    ]


class BrokerAway(ServiceLoop):
    """A loop whose broker never answers: connecting fails until the loop is stopped."""

    def connect(self) -> None:
        self.stop()  # a SIGTERM arrives while it waits
        self.retry("find the shop's topics", self._unanswered)

    def _unanswered(self) -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))


def test_a_service_stopped_while_kafka_is_away_ends_quietly_not_with_a_traceback() -> None:
    loop = BrokerAway("assemble", ["pizza-ordered"], Settings(log_level="WARNING"))
    loop.run()  # returns: no exception escapes, nothing to shut down
    assert not hasattr(loop, "consumer"), "it never got as far as a consumer"


class Position:
    """A consumer that stays where it is, as a quiet sink's does."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("pizza-status", 0)]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.offset) for tp in partitions]


class LostCommits:
    """Commits that are sent and never arrive (their coordinator moving to another node)."""

    def __init__(self) -> None:
        self.sent: list[dict[tuple[str, int], int]] = []

    def commit(self, positions: dict[tuple[str, int], int], synchronous: bool = False) -> bool:
        self.sent.append(dict(positions))
        return True

    def settle(self) -> None:
        pass  # nothing outstanding


def test_a_quiet_sink_commits_its_position_again_in_case_a_commit_was_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the chaos run: a status instance whose last commit was lost while a node was
    down showed a lag of 1 for ever, as nothing new came to commit."""
    now = [1000.0]
    monkeypatch.setattr("pizzashop.runtime.sink_loop.time.monotonic", lambda: now[0])
    sink = SinkLoop(SinkService("status", (Topic.STATUS,), lambda *_: None, dict), Settings())
    commits = LostCommits()
    sink.consumer, sink.commits = Position(7), commits  # type: ignore[assignment]  # fakes
    sink.commit_work()
    for _ in range(5):  # the next seconds: nothing new, nothing sent
        now[0] += sink_loop.POSITION_SECONDS
        sink.commit_work()
    assert commits.sent == [{("pizza-status", 0): 7}]
    now[0] += sink_loop.POSITION_AGAIN_SECONDS
    sink.commit_work()
    assert commits.sent == [{("pizza-status", 0): 7}] * 2, "the position was not sent again"


class Rebalancing:
    """A consumer whose next consume() hands partitions over, as librdkafka does, by calling
    the loop's revoke callback from inside consume()."""

    def __init__(self, revoke: Any) -> None:
        self.revoke = revoke
        self.handed_over = False

    def consume(self, up_to: int, timeout: float) -> list[Any]:
        if not self.handed_over:
            self.handed_over = True
            self.revoke(self, [TopicPartition("pizza-ordered", 0)])
        return []


class FailingHandOver(ServiceLoop):
    def commit_work(self, synchronous: bool = False) -> None:
        raise ValueError("a bug in the hand-over")

    def partitions_revoked(self, partitions: list[tuple[str, int]]) -> None:
        self.handed_back = partitions


def test_what_a_rebalance_callback_raises_is_raised_in_the_loop_not_lost_in_consume() -> None:
    """Raised out of a librdkafka callback, an exception breaks consume() with a SystemError
    that names nothing; the loop raises the callback's own, and still hands the work back."""
    loop = FailingHandOver("delivery", ["pizza-ordered"], Settings(log_level="WARNING"))
    loop.consumer, loop.commits = Rebalancing(loop._revoked), LostCommits()  # type: ignore[assignment]  # stand-ins

    with pytest.raises(ValueError, match="a bug in the hand-over"):
        loop.next_batch(0.0)
    assert loop.handed_back == [("pizza-ordered", 0)], "the partitions' work was dropped"
    assert loop.next_batch(0.0) == [], "raised once, then forgotten"
