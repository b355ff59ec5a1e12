"""One real Apache Kafka broker for the whole test session, and settings pointing at it.

With PIZZASHOP_BOOTSTRAP_SERVERS set in the environment, the tests use that cluster instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pizzashop.config import Settings, load_settings
from pizzashop.kafka_local import LocalKafka, start_local_kafka
from pizzashop.topics import create_topics
from tests.ports import free_port_block

TEST_TIME_SCALE = 0.001


@dataclass(frozen=True)
class Broker:
    bootstrap_servers: str
    version: str
    local: LocalKafka | None  # None when the tests run against a cluster given from outside


def broker_settings(state_dir: Path, nodes: int = 1, **overrides: object) -> Settings:
    """Settings for a local broker on free ports, its data in `state_dir`."""
    port = free_port_block(2 * nodes * 2)
    return load_settings(environ={}, state_dir=state_dir, kafka_port=port,
                         kafka_controller_port=port + 1, **overrides)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    outside = os.environ.get("PIZZASHOP_BOOTSTRAP_SERVERS")
    if outside:
        settings = load_settings(environ={}, bootstrap_servers=outside)
        create_topics(settings)
        yield Broker(outside, "(external cluster)", None)
        return
    settings = broker_settings(tmp_path_factory.mktemp("kafka-state"))
    local = start_local_kafka(settings)
    try:
        create_topics(settings, local.bootstrap_servers)
        yield Broker(local.bootstrap_servers, local.version, local)
    finally:
        local.stop()


@pytest.fixture
def shop_settings(kafka_broker: Broker, tmp_path: Path) -> Settings:
    return load_settings(
        environ={},
        bootstrap_servers=kafka_broker.bootstrap_servers,
        state_dir=tmp_path / "state",
        time_scale=TEST_TIME_SCALE,
        capacity=0,
        web_port=0,
    )


def pytest_report_header(config: pytest.Config) -> str:
    return "pizzashop: integration tests run against a real Apache Kafka broker started for the session"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    version = terminalreporter.config.stash.get(KAFKA_VERSION, None)
    if version:
        terminalreporter.write_line(f"pizzashop: tests ran against Apache Kafka {version}")


KAFKA_VERSION = pytest.StashKey[str]()


@pytest.fixture(scope="session", autouse=True)
def _remember_kafka_version(request: pytest.FixtureRequest) -> None:
    """Show in the summary which Kafka the tests talked to (only when one was used)."""
    if any("kafka_broker" in item.fixturenames for item in request.session.items):
        broker = request.getfixturevalue("kafka_broker")
        request.config.stash[KAFKA_VERSION] = f"{broker.version} at {broker.bootstrap_servers}"
