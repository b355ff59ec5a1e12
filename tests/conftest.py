"""One real Apache Kafka broker for the whole test session, and settings pointing at it.

With PIZZASHOP_BOOTSTRAP_SERVERS set in the environment, the tests use that cluster instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pizzashop.config import Settings, load_settings
from pizzashop.kafka.cluster import LocalKafka, start_local_kafka
from pizzashop.kafka.topics import create_topics
from tests.ports import free_port_block
from tests.postgres_cluster import Cluster, PostgresMissing, throwaway_postgres

TEST_TIME_SCALE = 0.001
# What says which outside cluster to use; every other PIZZASHOP_* variable of the shell is
# dropped below, so the tests run as configured here whatever the shell says.
OUTSIDE_CLUSTER_VARIABLES = (
    "PIZZASHOP_BOOTSTRAP_SERVERS",
    "PIZZASHOP_KAFKA_PROPERTIES_FILE",
    "PIZZASHOP_REPLICATION_FACTOR",
)


for _name in [n for n in os.environ if n.startswith("PIZZASHOP_")]:
    if _name not in OUTSIDE_CLUSTER_VARIABLES:
        del os.environ[_name]


@dataclass(frozen=True)
class Broker:
    bootstrap_servers: str
    version: str
    local: LocalKafka | None  # None when the tests run against a cluster given from outside
    settings: Settings  # how to reach it: address, and for an outside cluster its credentials


def broker_settings(state_dir: Path, nodes: int = 1, **overrides: Any) -> Settings:
    """Settings for a local broker on free ports, its data in `state_dir` (never an outside one)."""
    port = free_port_block(2 * nodes * 2)
    settings = load_settings(
        state_dir=state_dir, kafka_port=port, kafka_controller_port=port + 1, **overrides
    )
    return settings.replace(bootstrap_servers=None, kafka_properties_file=None)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    outside = load_settings()  # the outside cluster's variables, if the shell gives them
    if outside.bootstrap_servers:
        create_topics(outside)
        yield Broker(outside.bootstrap_servers, "(outside cluster)", None, outside)
        return
    settings = broker_settings(tmp_path_factory.mktemp("kafka-state"))
    local = start_local_kafka(settings)
    try:
        settings = settings.replace(bootstrap_servers=local.bootstrap_servers)
        create_topics(settings)
        yield Broker(local.bootstrap_servers, local.version, local, settings)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL for the session; `make test` installs it when missing."""
    try:
        with throwaway_postgres() as cluster:
            yield cluster
    except PostgresMissing as e:
        pytest.fail(
            f"PostgreSQL is needed for the read model's tests ({e}): run scripts/ensure-postgres"
        )


@pytest.fixture
def shop_settings(kafka_broker: Broker, tmp_path: Path) -> Settings:
    return load_settings(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_properties_file=kafka_broker.settings.kafka_properties_file,
        replication_factor=kafka_broker.settings.replication_factor,
        state_dir=tmp_path / "state",
        time_scale=TEST_TIME_SCALE,
        capacity=0,
        web_port=0,
    )


# The pantry cluster's starting stock: each scarce ingredient is one test's own, so that a
# level one test leaves (the pantry keeps it in its changelog) is no other test's start.
PANTRY_CLUSTER_STOCK = {
    "Mushroom": 10,
    "Black olives": 0,
    "Green pepper": 1,
    "Fresh garlic": 0,
    "Onion": 40,
    "Eggs": 1,  # the browser's sold-out test
}


@pytest.fixture(scope="session")
def pantry_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A broker of the pantry's tests: its pantry starts from PANTRY_CLUSTER_STOCK, whatever
    ran on the session's broker (the bench, for one, orders across the whole menu)."""
    folder = tmp_path_factory.mktemp("pantry")
    settings = broker_settings(folder / "kafka")
    local = start_local_kafka(settings)
    try:
        settings = settings.replace(
            bootstrap_servers=local.bootstrap_servers,
            state_dir=folder / "state",
            time_scale=TEST_TIME_SCALE,
            web_port=0,
            pantry_stock=tuple(sorted(PANTRY_CLUSTER_STOCK.items())),
        )
        create_topics(settings)
        yield settings
    finally:
        local.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return "pizzashop: integration tests run against a real Apache Kafka broker started for the session"


# Run in parallel (pytest-xdist, `make test` does), each worker is a test session of its own
# with its own broker. The tests that share a costlier fixture (a cluster or a shop of their
# own, scoped to the session or a module) are kept on one worker, so it still starts once.
SHARED_CLUSTERS = (
    "three_nodes",
    "cluster",
    "lopsided_cluster",
    "properties_file",
    "observed",
    "started_registry",
    "pantry_cluster",
)


# Before xdist's own hook, which reads the groups to send each group's tests to one worker: run
# after it (the default order), the groups came too late and each worker started the clusters
# its tests needed, two or three times over.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for cluster in SHARED_CLUSTERS:
            if cluster in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(cluster))


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    versions = terminalreporter.config.stash.get(KAFKA_VERSIONS, set())
    for version in sorted(versions):
        terminalreporter.write_line(f"pizzashop: tests ran against Apache Kafka {version}")


KAFKA_VERSIONS = pytest.StashKey[set[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[KAFKA_VERSIONS] = set()


def pytest_testnodedown(node: Any, error: object) -> None:
    """A parallel worker's broker, told to the main process for its summary. A worker that
    crashed has no output: xdist then reports its test as failed and goes on with another."""
    version = getattr(node, "workeroutput", {}).get("kafka_version")
    if version:
        node.config.stash[KAFKA_VERSIONS].add(version)


@pytest.fixture(scope="session", autouse=True)
def _remember_kafka_version(request: pytest.FixtureRequest) -> None:
    """Show in the summary which Kafka the tests talked to (only when one was used)."""
    if any("kafka_broker" in getattr(item, "fixturenames", ()) for item in request.session.items):
        broker = request.getfixturevalue("kafka_broker")
        version = f"{broker.version} at {broker.bootstrap_servers}"
        request.config.stash[KAFKA_VERSIONS].add(version)
        worker_output = getattr(request.config, "workeroutput", None)
        if worker_output is not None:
            worker_output["kafka_version"] = version
