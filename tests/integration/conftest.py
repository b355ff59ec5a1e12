"""The shop's services running against the session's real broker, for pipeline tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pizzashop.config import Settings
from pizzashop.kafka.cluster import LocalKafka, local_kafka_status, start_local_kafka
from pizzashop.services import SERVICE_NAMES
from tests.conftest import broker_settings
from tests.shop_harness import RunningShop

NODES = 3


@pytest.fixture
def shop(shop_settings: Settings) -> Iterator[RunningShop]:
    """All four services, each in a thread of this process, on the real broker."""
    running = RunningShop(shop_settings)
    for name in SERVICE_NAMES:
        running.start(name)
    yield running
    running.stop_all()
    running.runners.clear()  # let their Kafka clients go before the session's broker stops


@pytest.fixture(scope="session")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, Settings]]:
    """A local three-node KRaft cluster, started once for the tests that need one; a test that
    stops a node starts it again."""
    settings = broker_settings(tmp_path_factory.mktemp("three-nodes"), nodes=NODES)
    kafka = start_local_kafka(settings, nodes=NODES)
    try:
        yield kafka, settings.replace(bootstrap_servers=kafka.bootstrap_servers)
    finally:
        kafka.stop()
    assert not local_kafka_status(settings).running, "a node was left running"
