"""`pizzashop up --instances 3` on a three-node cluster: three of every service and three web
processes over one read model deliver a burst placed through every web process exactly once,
every instance holds partitions, and a customer sees their order at once on any web process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest
from confluent_kafka.admin import AdminClient

from pizzashop import contract
from pizzashop.config import Settings, as_environment, kafka_client_config
from pizzashop.kafka.cluster import LocalKafka
from pizzashop.local.shop import parts_file
from pizzashop.readmodel.store import open_readmodel
from pizzashop.services import SERVICE_NAMES
from tests.conftest import TEST_TIME_SCALE
from tests.integration.conftest import NODES
from tests.ports import free_port_block
from tests.shop_harness import assert_each_delivered_exactly_once, wait_for, wait_until_delivered

INSTANCES = 3
READ_MODEL_BEHIND = 0.3  # seconds the read model lags the log when web process 2 is asked
CUSTOMERS_PER_WEB = 2
ORDERS_PER_CUSTOMER = 4
PIZZA = {
    "name": "Italo",
    "sauce": "Tomato",
    "cheese": "Mozzarella",
    "main_topping": "Pepperoni",
    "extra_toppings": ["Mushroom"],
}


@pytest.fixture
def settings(three_nodes: tuple[LocalKafka, Settings], tmp_path: Path) -> Settings:
    _, cluster = three_nodes
    return cluster.replace(
        state_dir=tmp_path / "state",
        replication_factor=NODES,
        partitions=6,
        time_scale=TEST_TIME_SCALE,
        capacity=0,
        web_port=free_port_block(INSTANCES),
        observe_port=0,
    )


@pytest.fixture
def up(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`pizzashop up --instances 3` on the cluster, its log in up.log; stopped afterwards."""
    with (tmp_path / "up.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pizzashop", "up", "--instances", str(INSTANCES)],
            env={**os.environ, **as_environment(settings)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def ready_parts(settings: Settings, up: subprocess.Popen[bytes]) -> dict[str, str]:
    """The parts `up` announced, once every one of them says it is ready."""

    def all_ready() -> dict[str, str] | None:
        assert up.poll() is None, f"up exited with {up.returncode}"
        if not parts_file(settings).exists():
            return None
        parts: dict[str, str] = json.loads(parts_file(settings).read_text())["parts"]
        for address in parts.values():
            try:
                if httpx.get(f"{address}/readyz", timeout=5).status_code != 200:
                    return None
            except httpx.TransportError:
                return None
        return parts

    return wait_for(all_ready, timeout=180, what="every part of `up --instances 3` to be ready")


def shop_status(settings: Settings) -> subprocess.CompletedProcess[str] | None:
    """`pizzashop status --json` once it exits 0 (every part ready), else None."""
    shown = subprocess.run(
        [sys.executable, "-m", "pizzashop", "status", "--json"],
        env={**os.environ, **as_environment(settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return shown if shown.returncode == 0 else None


def signed_in(web: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=web, timeout=30)
    assert client.post("/api/session", json={"name": name}).status_code == 201
    return client


def place(client: httpx.Client) -> str:
    response = client.post("/api/orders", json=PIZZA)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["order_id"]
    return order_id


def the_same_customer_on(web: str, client: httpx.Client) -> httpx.Client:
    """Another web process, with the customer's cookie as their browser would send it."""
    return httpx.Client(base_url=web, timeout=30, cookies=client.cookies)


class PausedStatusServices:
    """The status services stopped (SIGSTOP), so the read model stays behind the log, for far
    less than their session timeout: the group does not notice."""

    def __init__(self, up: subprocess.Popen[bytes]) -> None:
        self.processes = [
            p
            for p in psutil.Process(up.pid).children()
            if p.cmdline()[-2:] == ["service", "status"]
        ]
        assert len(self.processes) == INSTANCES, f"expected {INSTANCES} status services"
        self._timer: threading.Timer | None = None

    def __enter__(self) -> PausedStatusServices:
        for process in self.processes:
            process.suspend()
        return self

    def resume_in(self, seconds: float) -> None:
        """The read model catches up `seconds` from now (while this thread asks a question)."""
        self._timer = threading.Timer(seconds, self.resume)
        self._timer.start()

    def resume(self) -> None:
        for process in self.processes:
            process.resume()

    def __exit__(self, *_: object) -> None:
        if self._timer is not None:
            self._timer.join()
        self.resume()


def assignments(settings: Settings) -> dict[str, list[int]]:
    """Each service's group: how many partitions each of its members holds."""
    admin = AdminClient(kafka_client_config(settings))
    groups = [contract.group_id(name) for name in SERVICE_NAMES]
    described = {
        group: future.result(30)
        for group, future in admin.describe_consumer_groups(groups, request_timeout=30).items()
    }
    return {
        group: sorted(len(m.assignment.topic_partitions) for m in description.members)
        for group, description in described.items()
    }


def test_three_of_everything_deliver_a_burst_once_and_show_a_customer_their_order_anywhere(
    settings: Settings, up: subprocess.Popen[bytes]
) -> None:
    parts = ready_parts(settings, up)
    # Readiness comes from each client's statistics, a second old at most: while three
    # instances of a service join one by one, a part that said ready may be rebalancing
    # again a moment later. `status` says so, and exits 0 once every part is ready.
    shown = wait_for(
        lambda: shop_status(settings),
        timeout=60,
        what="`pizzashop status` to show every part ready",
        interval=0.5,
    )
    assert {p["part"] for p in json.loads(shown.stdout)["parts"]} == set(parts)
    webs = [parts[f"web-{n}"] for n in range(1, INSTANCES + 1)]
    for kind in (*SERVICE_NAMES, "web"):
        assert sorted(p for p in parts if p.startswith(f"{kind}-")) == [
            f"{kind}-{n}" for n in range(1, INSTANCES + 1)
        ], f"up should run {INSTANCES} of {kind}: {sorted(parts)}"

    # A customer orders on web process 1 and looks at once on 2 and 3: no retry. The order is
    # placed while the read model cannot take it, so web process 2 must wait for it.
    customer = signed_in(webs[0], "Margherita")
    read_model = open_readmodel(settings.readmodel_url)
    with PausedStatusServices(up) as paused:
        first = place(customer)
        assert read_model.orders.get_order(first) is None, "the status services should be paused"
        paused.resume_in(READ_MODEL_BEHIND)
        seen = the_same_customer_on(webs[1], customer).get(f"/api/orders/{first}")
        assert seen.status_code == 200, f"web-2 did not show the order just placed: {seen.text}"
    for web in webs[1:]:
        elsewhere = the_same_customer_on(web, customer)
        seen = elsewhere.get(f"/api/orders/{first}")
        assert seen.status_code == 200, f"{web} did not show the order just placed: {seen.text}"
        listed = [o["order_id"] for o in elsewhere.get("/api/orders").json()]
        assert first in listed, f"{web} listed {listed}, not the order just placed"

    order_ids = [first]
    for web in webs:
        for n in range(CUSTOMERS_PER_WEB):
            client = signed_in(web, f"Italo {n}")
            order_ids += [place(client) for _ in range(ORDERS_PER_CUSTOMER)]

    wait_until_delivered(read_model, order_ids, timeout=180)
    assert_each_delivered_exactly_once(settings, read_model, order_ids)

    held = assignments(settings)
    for group, partitions in held.items():
        # The pantry's one partition: one instance decides, the others stand by.
        working = 1 if group == contract.group_id("pantry") else INSTANCES
        assert len(partitions) == INSTANCES and sum(p >= 1 for p in partitions) == working, (
            f"{group}: {working} of {INSTANCES} instances should hold partitions: {partitions}"
        )

    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=60) == 0, "up did not stop cleanly"
