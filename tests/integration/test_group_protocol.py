"""The consumer group protocol (KIP-848) under exactly-once, on the real broker: the broker
assigns the partitions (range, so an order's partitions stay together), members join and die
mid-burst, and still every order is delivered exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupType
from confluent_kafka.admin import AdminClient

from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import group_id
from pizzashop.services import SERVICE_NAMES
from tests.integration.test_faults import BURST, Burst, finish_and_check
from tests.shop_harness import ShopProcesses, wait_for

pytestmark = pytest.mark.faults


@pytest.fixture
def processes(shop_settings: Settings, tmp_path: Path) -> Iterator[ShopProcesses]:
    settings = shop_settings.replace(time_scale=0.03, log_level="INFO", group_protocol="consumer")
    shop = ShopProcesses(settings, tmp_path)
    for name in SERVICE_NAMES:
        shop.start(name)
    yield shop
    shop.stop_all()


def group_types(settings: Settings) -> dict[str, ConsumerGroupType]:
    admin = AdminClient(kafka_client_config(settings))
    groups = [group_id(name) for name in SERVICE_NAMES]
    described = admin.describe_consumer_groups(groups, request_timeout=10)
    return {name: future.result(timeout=10).type for name, future in described.items()}


def test_members_joining_and_killed_mid_burst_under_the_consumer_protocol_lose_nothing(
    processes: ShopProcesses,
) -> None:
    with Burst(processes.settings) as burst:
        wait_for(lambda: len(burst.order_ids) > BURST // 4, timeout=60, what="the burst to start")
        processes.start("delivery")  # it keeps state per order: its partitions must move whole
        processes.start("assemble")
        wait_for(burst.half_placed, timeout=60, what="half the burst to be placed")
        processes.kill("assemble")  # SIGKILL, mid-transaction: the broker's session ends it
        processes.kill("delivery")
    finish_and_check(processes, burst.order_ids)
    assert group_types(processes.settings) == dict.fromkeys(
        (group_id(name) for name in SERVICE_NAMES), ConsumerGroupType.CONSUMER
    ), "every service's group ran under the consumer protocol"
