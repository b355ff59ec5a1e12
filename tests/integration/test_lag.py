"""Lag and dead letters as the broker tells them: no service process is asked."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaException

from pizzashop.config import Settings
from pizzashop.contract import ONE_PARTITION_TOPICS, SERVICES, Topic
from pizzashop.kafka.lag import PartitionLag, admin_client, dead_letter_count, group_lag
from pizzashop.services import SERVICE_NAMES
from tests.shop_harness import (
    RunningShop,
    an_order,
    place,
    produce_raw,
    wait_for,
    wait_until_delivered,
)

T = TypeVar("T")


def total(lag: dict[str, PartitionLag]) -> dict[str, int]:
    return {service: sum(behind.values()) for service, behind in lag.items()}


def settled(read: Callable[[], T]) -> T:
    """What `read` gives once every partition has its leader: for a second or so after a
    broker starts, its partitions answer NOT_LEADER_FOR_PARTITION (librdkafka does not call
    that retriable)."""
    problems: list[str] = []

    def attempt() -> tuple[T] | None:
        try:
            return (read(),)  # in a tuple: a count of 0 is an answer too
        except KafkaException as e:
            problems.append(str(e))
            return None

    try:
        return wait_for(attempt, timeout=30, what="the broker to answer for every partition")[0]
    except AssertionError as e:
        raise AssertionError(f"{e}; last: {problems[-1:]}") from None


def test_orders_no_service_has_read_are_the_lag_of_every_group_that_reads_them(
    shop_settings: Settings,
) -> None:
    admin = admin_client(shop_settings)
    before = total(settled(lambda: group_lag(shop_settings, admin)))
    for _ in range(3):
        place(shop_settings, an_order())  # no service runs: nobody reads them yet
    after = total(settled(lambda: group_lag(shop_settings, admin)))
    grew = {service: after[service] - before[service] for service in SERVICES}
    assert grew == {"assemble": 3, "pantry": 0, "bake": 0, "delivery": 3, "status": 3}, (
        "each group that consumes pizza-ordered is 3 records further behind"
    )


def test_a_quiet_shop_has_no_lag_although_its_topics_end_in_transaction_markers(
    shop_settings: Settings,
) -> None:
    shop = RunningShop(shop_settings)
    for name in SERVICE_NAMES:
        shop.start(name)
    try:
        orders = [place(shop_settings, an_order()) for _ in range(5)]
        wait_until_delivered(shop.read_model(), orders, timeout=60)
        wait_for(
            lambda: not any(total(settled(lambda: group_lag(shop_settings))).values()),
            timeout=30,
            what="every group to commit past the last records and their markers",
        )
    finally:
        shop.stop_all()


def test_every_partition_of_every_input_topic_is_listed(shop_settings: Settings) -> None:
    lag = settled(lambda: group_lag(shop_settings))
    for service, consumed in SERVICES.items():
        topics = {topic for topic, _partition in lag[service]}
        assert topics == {str(t) for t in consumed}, service
        partitions = sum(
            1 if topic in ONE_PARTITION_TOPICS else shop_settings.partitions for topic in consumed
        )
        assert len(lag[service]) == partitions, service


def test_a_record_parked_in_the_dead_letter_topic_is_counted(shop_settings: Settings) -> None:
    before = settled(lambda: dead_letter_count(shop_settings))
    key = f"lag-test-{secrets.token_hex(4)}".encode()
    produce_raw(shop_settings, str(Topic.DEAD_LETTER), key, b"parked by a test")
    assert dead_letter_count(shop_settings) == before + 1
