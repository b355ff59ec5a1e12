"""The whole shop on a three-node KRaft cluster: a node dying mid-burst loses no order.

Topics have replication factor 3 and min.insync.replicas 2, so with one node down every
write is still acknowledged by two replicas. (The plain produce-and-consume case is in
test_three_nodes.py, which runs without the faults mark.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pizzashop.config import Settings
from pizzashop.kafka.cluster import LocalKafka, start_local_kafka
from pizzashop.kafka.topics import create_topics
from pizzashop.services import SERVICE_NAMES
from tests.conftest import broker_settings
from tests.integration.test_faults import Burst, finish_and_check
from tests.shop_harness import ShopProcesses, wait_for

NODES = 3

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, Settings]]:
    settings = broker_settings(
        tmp_path_factory.mktemp("cluster-state"), nodes=NODES, replication_factor=NODES
    )
    kafka = start_local_kafka(settings, nodes=NODES)
    try:
        settings = settings.replace(bootstrap_servers=kafka.bootstrap_servers)
        create_topics(settings)
        yield kafka, settings
    finally:
        kafka.stop()


def test_the_shop_loses_nothing_when_a_node_dies_mid_burst(
    cluster: tuple[LocalKafka, Settings], tmp_path: Path
) -> None:
    kafka, settings = cluster
    shop = ShopProcesses(settings.replace(state_dir=tmp_path / "shop", time_scale=0.03), tmp_path)
    for name in SERVICE_NAMES:
        shop.start(name)
    try:
        with Burst(shop.settings) as burst:
            wait_for(burst.half_placed, timeout=60, what="half the burst to be placed")
            kafka.kill_node(1)
        finish_and_check(shop, burst.order_ids)
    finally:
        shop.stop_all()
        kafka.start_node(1)
