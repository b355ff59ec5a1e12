"""Helpers for tests on the real broker: run the services, place orders, wait for outcomes."""

from __future__ import annotations

import functools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import uvicorn
from confluent_kafka import Producer
from fastapi import FastAPI

from pizzashop import contract
from pizzashop.commands.ordering import OrderTaker
from pizzashop.config import Settings, as_environment, kafka_client_config
from pizzashop.contract import Order, Status, Topic
from pizzashop.kafka.topics import read_to_end
from pizzashop.readmodel import OrderView
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.runtime import ServiceLoop, loop_for
from pizzashop.runtime.wedge import WEDGED_EXIT_CODE
from pizzashop.services import SERVICE_NAMES, build_service
from pizzashop.web.app import web_server
from tests.ports import free_port

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | Literal[False] | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
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
class ServedApp:
    """A web app on a real uvicorn server in a thread of this process."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Ask the server to stop (it stops in its own time: see `thread`)."""
        self.server.should_exit = True


@contextmanager
def served(app: FastAPI, port: int | None = None, start_timeout: float = 10) -> Iterator[ServedApp]:
    """The app served on 127.0.0.1 (a free port unless given) for the test client cannot hold
    a stream open; stopped afterwards."""
    port = port or free_port()
    server = web_server(app, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=start_timeout, what="the web server to start")
        yield ServedApp(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class RunningShop:
    settings: Settings
    runners: list[ServiceLoop] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, name: str) -> ServiceLoop:
        runner = loop_for(build_service(name, self.settings), self.settings)
        thread = threading.Thread(target=runner.run, name=f"service-{name}", daemon=True)
        thread.start()
        self.runners.append(runner)
        self.threads.append(thread)
        return runner

    def stop(self, runner: ServiceLoop, timeout: float = 30.0) -> None:
        index = self.runners.index(runner)
        runner.stop()
        self.threads[index].join(timeout)
        assert not self.threads[index].is_alive(), f"{runner.name} did not stop in {timeout}s"

    def stop_all(self) -> None:
        for runner in list(self.runners):
            self.stop(runner)

    def read_model(self) -> ReadModel:
        return open_readmodel(self.settings.readmodel_url)


@contextmanager
def every_service(settings: Settings) -> Iterator[RunningShop]:
    """Every service of the shop running in this process, stopped at the end."""
    running = RunningShop(settings)
    for name in SERVICE_NAMES:
        running.start(name)
    try:
        yield running
    finally:
        running.stop_all()
        running.runners.clear()


PROGRESS = [Status.RECEIVED, Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED]


def an_order(name: str = "Italo", extras: tuple[str, ...] = ("Mushroom",)) -> Order:
    return Order(
        customer_id="c-" + secrets.token_hex(4),
        name=name,
        sauce="Tomato",
        cheese="Mozzarella",
        main_topping="Pepperoni",
        extra_toppings=list(extras),
    )


def status_events(settings: Settings, order_ids: set[str]) -> Counter[tuple[str, int]]:
    """How many times each (order, status) was committed to pizza-status."""
    seen: Counter[tuple[str, int]] = Counter()
    for message in read_to_end(settings, str(Topic.STATUS), timeout=60):
        key = (message.key() or b"").decode()
        if key in order_ids:
            event = contract.decode(str(Topic.STATUS), message.key(), message.value())
            assert isinstance(event, contract.StatusChanged)
            seen[(key, int(event.status))] += 1
    return seen


def assert_each_delivered_exactly_once(
    settings: Settings, read_model: ReadModel, order_ids: list[str]
) -> None:
    """Every order reached 400 with a clean history, and each step was produced once."""
    for order_id in order_ids:
        view = read_model.orders.get_order(order_id)
        assert view is not None, f"order {order_id} is missing from the read model"
        assert [e.status for e in view.history] == PROGRESS, f"{order_id}: {view.history}"
    counts = status_events(settings, set(order_ids))
    twice = {k: n for k, n in counts.items() if n != 1}
    missing = [(i, s) for i in order_ids for s in (200, 300, 400) if (i, s) not in counts]
    assert not twice, f"produced more than once: {dict(list(twice.items())[:10])}"
    assert not missing, f"never produced: {missing[:10]}"


def produce_raw(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer(kafka_client_config(settings))
    producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0, "the broker did not acknowledge the event"


def place(settings: Settings, order: contract.Order, order_id: str | None = None) -> str:
    """Place an order the way the shop does; OrderNotAccepted or OrderUnconfirmed (commands/ordering.py)
    if the broker does not say yes."""
    placed, _ = order_taker(settings).place(order, order_id or contract.new_order_id())
    return placed.order_id


@functools.cache
def order_taker(settings: Settings) -> OrderTaker:
    """One producer per shop, as a web process has: a new one per order takes up to a second."""
    return OrderTaker(settings)


def wait_until_delivered(
    read_model: ReadModel, order_ids: list[str], timeout: float
) -> list[OrderView]:
    # Delivered and its placing read: a status service still reading other tests' orders on
    # the shared broker can read an order's statuses before its placing, which comes later.
    def done(view: OrderView | None) -> bool:
        return (
            view is not None
            and view.status is contract.Status.DELIVERED
            and view.placed_at is not None
        )

    def all_delivered() -> list[OrderView] | None:
        views = [read_model.orders.get_order(order_id) for order_id in order_ids]
        if all(done(v) for v in views):
            return views  # type: ignore[return-value]  # none is None: checked just above
        return None

    def missing() -> str:
        views = {i: read_model.orders.get_order(i) for i in order_ids}
        late = {
            i: (v.status if v else None, "placed" if v and v.placed_at else "placing not read")
            for i, v in views.items()
            if not done(v)
        }
        return f"{len(order_ids)} orders delivered; not yet: {dict(list(late.items())[:5])}"

    try:
        return wait_for(all_delivered, timeout, "every order to reach 400")
    except AssertionError:
        raise AssertionError(missing()) from None


class ShopProcesses:
    """The services (`pizzashop service NAME`) and the web app (`pizzashop web`) as real
    processes, to kill and restart them; `settings` of its own for one instance (its ports).

    An instance that exits as a wedged producer (code 75, runtime/wedge.py) is started again,
    as `pizzashop up`, a container runtime or Kubernetes would: that exit asks for it."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.processes: dict[str, list[subprocess.Popen[bytes]]] = {}
        self.wedged_restarts: list[str] = []  # names of instances started again
        self._replaced: set[int] = set()  # pids of the wedged instances started again
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._restart_wedged, daemon=True)
        self._watcher.start()

    def _restart_wedged(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                wedged = [
                    (name, p)
                    for name, instances in self.processes.items()
                    for p in instances
                    if p.poll() == WEDGED_EXIT_CODE and p.pid not in self._replaced
                ]
                for name, process in wedged:
                    self._replaced.add(process.pid)
                    self.wedged_restarts.append(name)
                    self._start_locked(name, None)

    def start(self, name: str, settings: Settings | None = None) -> subprocess.Popen[bytes]:
        with self._lock:
            return self._start_locked(name, settings)

    def _start_locked(self, name: str, settings: Settings | None) -> subprocess.Popen[bytes]:
        instances = self.processes.setdefault(name, [])
        log_file = (self.log_dir / f"{name}-{len(instances)}.log").open("wb")
        command = ["web"] if name == "web" else ["service", name]
        process = subprocess.Popen(
            [sys.executable, "-m", "pizzashop", *command],
            env={**os.environ, **as_environment(settings or self.settings)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        instances.append(process)
        return process

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, oldest: bool = False) -> None:
        """Kill the newest running instance of a service (or the oldest)."""
        running = [p for p in self.processes.get(name, []) if p.poll() is None]
        assert running, f"no running instance of {name} to kill"
        victim = running[0 if oldest else -1]
        victim.send_signal(sig)
        victim.wait(30)

    def unexpected_exits(self) -> list[str]:
        """Instances that ended without being killed by the test."""
        return [
            f"{name}#{i} exit {p.returncode}"
            for name, instances in self.processes.items()
            for i, p in enumerate(instances)
            if p.poll() is not None
            and p.returncode not in (-signal.SIGKILL, -signal.SIGTERM, 0)
            and p.pid not in self._replaced
        ]

    def stop_all(self) -> None:
        self._stopping.set()
        self._watcher.join(5)
        everything = [p for instances in self.processes.values() for p in instances]
        for process in everything:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in everything:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, lines: int = 30) -> str:
        tails = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(tails)
