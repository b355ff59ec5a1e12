"""The guard against a transactional call that never returns (librdkafka #5456, #5511)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx2 as httpx
import pytest
from confluent_kafka import TopicPartition

from pizzashop.config import Settings
from pizzashop.local.shop import describe_exit
from pizzashop.observe.health import Readiness
from pizzashop.observe.server import ObserveServer
from pizzashop.runtime.problems import ProblemLog
from pizzashop.runtime.producing import OutgoingRecord, ProducerSetup, Transactions
from pizzashop.runtime.wedge import WEDGED_EXIT_CODE, TransactionWatch
from tests.unit.memory_kafka import MemoryConsumer, MemoryKafka, MemoryProducer, no_retry


class Exits:
    """Stands in for os._exit: notes the code and lets the watcher's thread end."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.done = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.done.set()


class FastClock:
    """Ten seconds pass each time it is read: a 30 s timeout runs out in a few looks."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10
        return self.now


class WedgedProducer(MemoryProducer):
    """send_offsets_to_transaction blocks past its timeout, as librdkafka 2.9+ can."""

    def __init__(self, kafka: MemoryKafka) -> None:
        super().__init__(kafka, transactional=True)
        self.released = threading.Event()

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: object, timeout: float
    ) -> None:
        self.kafka.calls.append("offsets")
        self.released.wait(30)


def test_a_call_that_returns_in_time_is_left_alone() -> None:
    exits = Exits()
    watch = TransactionWatch(margin=0.1, grace=0, exit_process=exits)
    assert watch.call("commit_transaction", 0.1, lambda: 42) == 42
    assert not exits.done.wait(1.0), "a call that returned never makes the process exit"
    assert watch.wedged is None


def test_a_commit_whose_offsets_call_hangs_exits_the_process_to_be_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exits = Exits()
    watch = TransactionWatch(margin=15, grace=0.5, exit_process=exits, clock=FastClock())
    kafka = MemoryKafka()
    producer = WedgedProducer(kafka)
    setup = ProducerSetup(
        Settings(processing_guarantee="exactly_once", log_level="WARNING"),
        "assemble",
        [],
        ProblemLog(),
        retry=no_retry,
        watch=watch,
        make_producer=lambda config: producer,
    )
    commits: Transactions[None] = Transactions(setup, MemoryConsumer(kafka))
    commits.send([OutgoingRecord("pizza-assembled", b"order-1", b"{}")], None)
    committing = threading.Thread(target=commits.commit, args=({("pizza-ordered", 0): 8},))
    server = ObserveServer("127.0.0.1", 0, lambda: Readiness(True, [], {}), lambda: watch.wedged)
    server.start()
    try:
        with caplog.at_level(logging.ERROR, logger="pizzashop.runtime"):
            committing.start()
            seen_while_waiting = wait_for_wedged_health(server.url)
            assert exits.done.wait(10), "the process was never told to exit"
            calls_at_exit = list(kafka.calls)
    finally:
        producer.released.set()
        committing.join(10)
        server.close()

    assert exits.codes == [WEDGED_EXIT_CODE]
    assert seen_while_waiting["status"] == "wedged"
    assert "send_offsets_to_transaction" in seen_while_waiting["detail"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert "wedged: send_offsets_to_transaction has not returned after 45s" in errors[0]
    assert calls_at_exit == ["begin", "offsets"], "nothing goes out past the hung call"
    assert describe_exit(WEDGED_EXIT_CODE) == "75 (wedged producer)"


def wait_for_wedged_health(url: str) -> dict[str, Any]:
    """/healthz once it answers 503 (it does between the ERROR line and the exit)."""
    for _ in range(100):
        answer = httpx.get(f"{url}/healthz", timeout=5)
        if answer.status_code == 503:
            body: dict[str, Any] = json.loads(answer.text)
            return body
        threading.Event().wait(0.05)
    raise AssertionError("/healthz never said the producer is wedged")
