"""The chaos run's fault injector, with the broker's nodes stood in for."""

from __future__ import annotations

from pathlib import Path

from pizzashop.chaos.faults import Fault, Happened, Injector, Kind
from pizzashop.chaos.instances import ServiceInstances
from pizzashop.config import Settings
from pizzashop.kafka.cluster import LocalKafka
from pizzashop.kafka.jars import KafkaSetupError
from tests.shop_harness import wait_for


class SlowNodes(LocalKafka):
    """Nodes that answer only after `slow_waits` start timeouts have run out."""

    def __init__(self, settings: Settings, slow_waits: int) -> None:
        super().__init__(settings, nodes=3)
        self.slow_waits = slow_waits

    def kill_node(self, index: int) -> None:
        pass

    def start_node(self, index: int) -> None:
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        if self.slow_waits:
            self.slow_waits -= 1
            raise KafkaSetupError("Kafka node 2 did not answer within 60s")


def node_down_with(slow_waits: int, tmp_path: Path) -> tuple[Happened, list[str]]:
    settings = Settings(state_dir=tmp_path, bootstrap_servers="127.0.0.1:9")
    injector = Injector(
        settings,
        SlowNodes(settings, slow_waits),
        ServiceInstances(settings, tmp_path),
        burst=lambda count: None,
        clock=lambda: 42.0,
    )
    injector.do(Fault(Kind.NODE, "node-2", hold=0.0))

    def over() -> bool:
        injector.look_after()
        return injector.all_over()

    wait_for(over, timeout=10, what="the node fault to be over")
    (happened,) = injector.happened
    return happened, injector.close(timeout=0)


def test_a_node_slow_to_answer_gets_a_second_wait_and_counts_as_back(tmp_path: Path) -> None:
    happened, problems = node_down_with(slow_waits=1, tmp_path=tmp_path)
    assert happened.ended == 42.0
    assert problems == []


def test_a_node_that_never_answers_is_a_problem_of_the_run_not_a_crash(tmp_path: Path) -> None:
    happened, problems = node_down_with(slow_waits=2, tmp_path=tmp_path)
    assert happened.ended is None
    assert problems == ["node-2 did not come back within two start timeouts"]
