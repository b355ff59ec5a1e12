"""Helpers for tests on the real broker: run the services, place orders, wait for outcomes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import Producer

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config
from pizzashop.readmodel import OrderView, ReadModel, open_readmodel
from pizzashop.runtime import ServiceRunner
from pizzashop.services import SERVICE_NAMES, build_service

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class RunningShop:
    settings: Settings
    runners: list[ServiceRunner] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, name: str) -> ServiceRunner:
        runner = ServiceRunner(build_service(name, self.settings), self.settings)
        thread = threading.Thread(target=runner.run, name=f"service-{name}", daemon=True)
        thread.start()
        self.runners.append(runner)
        self.threads.append(thread)
        return runner

    def stop(self, runner: ServiceRunner, timeout: float = 30.0) -> None:
        index = self.runners.index(runner)
        runner.stop()
        self.threads[index].join(timeout)
        assert not self.threads[index].is_alive(), f"{runner.service.name} did not stop in {timeout}s"

    def stop_all(self) -> None:
        for runner in list(self.runners):
            self.stop(runner)

    def read_model(self) -> ReadModel:
        return open_readmodel(self.settings.readmodel_url)


def produce_raw(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer(kafka_client_config(settings))
    producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0, "the broker did not acknowledge the event"


def place(settings: Settings, order: contract.Order, order_id: str | None = None) -> str:
    event = contract.OrderPlaced(order_id or contract.new_order_id(), order, contract.now_ms())
    record = contract.encode(event)
    produce_raw(settings, record.topic, record.key, record.value)
    return event.order_id


def wait_until_delivered(read_model: ReadModel, order_ids: list[str], timeout: float) -> list[OrderView]:
    def all_delivered() -> list[OrderView] | None:
        views = [read_model.get_order(order_id) for order_id in order_ids]
        if all(v is not None and v.status is contract.Status.DELIVERED for v in views):
            return views  # type: ignore[return-value]
        return None

    def missing() -> str:
        views = {i: read_model.get_order(i) for i in order_ids}
        late = {i: (v.status if v else None) for i, v in views.items()
                if v is None or v.status is not contract.Status.DELIVERED}
        return f"{len(order_ids)} orders delivered; not yet: {dict(list(late.items())[:5])}"

    try:
        return wait_for(all_delivered, timeout, "every order to reach 400")
    except AssertionError:
        raise AssertionError(missing()) from None
