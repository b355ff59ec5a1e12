"""Nothing lost, nothing twice: services killed, instances joining and leaving, mid-burst.

The services run as real processes here, so SIGKILL means what it means in production.
Each test places a steady burst of orders, does its damage in the middle of it, and then
checks that every order reached 400 exactly once with a clean status history.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from pizzashop.commands.ordering import OrderNotAccepted, OrderUnconfirmed
from pizzashop.config import GroupProtocol, Settings, kafka_client_config
from pizzashop.contract import Status, group_id, new_order_id
from pizzashop.readmodel.store import open_readmodel
from pizzashop.services import SERVICE_NAMES
from tests.conftest import Broker
from tests.shop_harness import (
    ShopProcesses,
    an_order,
    assert_each_delivered_exactly_once,
    place,
    wait_for,
    wait_until_delivered,
)

BURST = 150
BURST_SECONDS = 3.0

pytestmark = pytest.mark.faults


@pytest.fixture
def processes(shop_settings: Settings, tmp_path: Path) -> Iterator[ShopProcesses]:
    # Slow enough that orders are really in the oven and on the road when the damage is done.
    settings = shop_settings.replace(time_scale=0.03, log_level="INFO")
    shop = ShopProcesses(settings, tmp_path)
    for name in SERVICE_NAMES:
        shop.start(name)
    yield shop
    shop.stop_all()


class Burst:
    """Orders placed at a steady rate in the background."""

    def __init__(
        self, settings: Settings, count: int = BURST, seconds: float = BURST_SECONDS
    ) -> None:
        self.settings = settings
        self.order_ids: list[str] = []
        self._pause = seconds / count
        self._count = count
        self._thread = threading.Thread(target=self._place_all, daemon=True)
        self._done = threading.Event()

    def _place_all(self) -> None:
        for i in range(self._count):
            self.order_ids.append(self._place_until_accepted(f"Burst {i}"))
            self._done.wait(self._pause)

    def _place_until_accepted(self, name: str) -> str:
        """While the broker is down an order is refused or left unconfirmed; the customer tries
        again with the same order (the same idempotency key): it is made once all the same."""
        order, order_id = an_order(name=name), new_order_id()
        deadline = time.monotonic() + 60
        while True:
            try:
                return place(self.settings, order, order_id)
            except (OrderNotAccepted, OrderUnconfirmed):
                if time.monotonic() > deadline:
                    raise
                self._done.wait(0.2)

    def __enter__(self) -> Burst:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._thread.join(60)

    def half_placed(self) -> bool:
        return len(self.order_ids) >= self._count // 2


def delivered_count(settings: Settings, order_ids: list[str]) -> int:
    read_model = open_readmodel(settings.readmodel_url)
    try:
        return sum(
            1
            for i in list(order_ids)
            if (v := read_model.orders.get_order(i)) and v.status is Status.DELIVERED
        )
    finally:
        read_model.close()


def finish_and_check(processes: ShopProcesses, order_ids: list[str]) -> None:
    read_model = open_readmodel(processes.settings.readmodel_url)
    try:
        wait_until_delivered(read_model, order_ids, timeout=120)
        assert_each_delivered_exactly_once(processes.settings, read_model, order_ids)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{processes.log_tail()}") from None
    finally:
        read_model.close()
    assert not processes.unexpected_exits(), processes.unexpected_exits()


@pytest.mark.parametrize("victim", SERVICE_NAMES)
def test_a_service_killed_mid_burst_loses_nothing_and_repeats_nothing(
    processes: ShopProcesses, victim: str
) -> None:
    with Burst(processes.settings) as burst:
        wait_for(burst.half_placed, timeout=60, what="half the burst to be placed")
        wait_for(
            lambda: delivered_count(processes.settings, burst.order_ids) > 0,
            timeout=60,
            what="the first deliveries",
        )
        processes.kill(victim)
        processes.start(victim)
    finish_and_check(processes, burst.order_ids)


@pytest.mark.parametrize("service", ["assemble", "bake", "delivery", "status"])
def test_a_second_instance_joining_and_leaving_mid_burst_changes_nothing(
    processes: ShopProcesses, service: str
) -> None:
    with Burst(processes.settings) as burst:
        wait_for(lambda: len(burst.order_ids) > BURST // 4, timeout=60, what="the burst to start")
        processes.start(service)
        wait_for(burst.half_placed, timeout=60, what="half the burst to be placed")
        processes.kill(service, sig=signal.SIGTERM)
    finish_and_check(processes, burst.order_ids)


def test_the_broker_stopped_and_restarted_mid_burst_loses_nothing(
    processes: ShopProcesses, kafka_broker: Broker
) -> None:
    if kafka_broker.local is None:
        pytest.skip("the tests run against an outside cluster, which they do not restart")
    with Burst(processes.settings) as burst:
        wait_for(
            lambda: delivered_count(processes.settings, burst.order_ids) > 0,
            timeout=60,
            what="the first deliveries",
        )
        kafka_broker.local.stop_node(0)
        kafka_broker.local.start_node(0)
    finish_and_check(processes, burst.order_ids)


# What a group's coordinator answers while it loads or moves; asked again, it answers.
COORDINATOR_MOVING = {
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
}


def members_with_partitions(settings: Settings, service: str) -> int:
    """How many members of a service's consumer group hold partitions now, as the broker
    says (a member that is still joining is counted once it has its share)."""
    admin = AdminClient(kafka_client_config(settings))
    group = group_id(service)
    try:
        members = admin.describe_consumer_groups([group])[group].result(timeout=10).members
    except KafkaException as e:
        if e.args[0].code() not in COORDINATOR_MOVING:
            raise
        return -1  # not known yet (a fresh broker's coordinator still loading): ask again
    return sum(1 for m in members if m.assignment and m.assignment.topic_partitions)


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_an_instance_paused_past_its_session_is_a_zombie_whose_work_counts_once(
    shop_settings: Settings, tmp_path: Path, protocol: GroupProtocol
) -> None:
    settings = shop_settings.replace(time_scale=0.03, log_level="INFO", group_protocol=protocol)
    processes = ShopProcesses(settings, tmp_path)
    for name in SERVICE_NAMES:
        processes.start(name)
    try:
        with Burst(settings) as burst:
            wait_for(lambda: len(burst.order_ids) > BURST // 4, timeout=60, what="the burst")
            zombie = processes.start("assemble")
            wait_for(
                lambda: members_with_partitions(settings, "assemble") == 2,
                timeout=60,
                what="a second assemble instance holding partitions",
            )
            wait_for(burst.half_placed, timeout=60, what="half the burst to be placed")
            zombie.send_signal(signal.SIGSTOP)  # mid-transaction, as a long GC pause would
            wait_for(
                lambda: members_with_partitions(settings, "assemble") == 1,
                timeout=60,
                what="the paused instance's session to end and its partitions to move",
            )
            zombie.send_signal(signal.SIGCONT)  # it wakes up a zombie: its commits are fenced
            woken = tmp_path / "assemble-1.log"  # the second assemble's (see ShopProcesses)
            wait_for(
                lambda: "dropping what is not committed" in woken.read_text(),
                timeout=60,
                what="the zombie to let its lost partitions go without committing",
            )
        finish_and_check(processes, burst.order_ids)
    finally:
        processes.stop_all()
