"""Seeing inside the running shop: every process's /healthz, /readyz and /metrics, and one
connected trace per order across the processes, received over OTLP as a collector would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from pizzashop.commands.ordering import OrderTaker
from pizzashop.config import Settings, as_environment, load_settings
from pizzashop.contract import SERVICES
from pizzashop.kafka.topics import PIPELINE_TOPIC_NAMES
from pizzashop.observe.server import ObserveServer
from pizzashop.readmodel.store import open_readmodel
from pizzashop.services import SERVICE_NAMES
from pizzashop.web.app import create_app
from tests.conftest import TEST_TIME_SCALE, Broker
from tests.integration.test_web_kafka import ORDER
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.ports import free_port
from tests.shop_harness import RunningShop, ShopProcesses, wait_for, wait_until_delivered


@dataclass
class ObservedShop:
    settings: Settings
    processes: ShopProcesses
    addresses: dict[str, str]  # part -> where its /healthz, /readyz and /metrics are
    receiver: OtlpReceiver


@pytest.fixture(scope="module")
def observed(
    kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ObservedShop]:
    """The four services and the web app as processes, exporting traces to a receiver."""
    folder = tmp_path_factory.mktemp("observed")
    settings = load_settings(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_properties_file=kafka_broker.settings.kafka_properties_file,
        replication_factor=kafka_broker.settings.replication_factor,
        state_dir=folder / "state",
        time_scale=TEST_TIME_SCALE,
        web_port=free_port(),
    )
    with OtlpReceiver() as receiver, pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms between exports: the test waits less
        processes = ShopProcesses(settings, folder)
        addresses = {"web": f"http://127.0.0.1:{settings.web_port}"}
        for name in SERVICE_NAMES:
            port = free_port()
            log_format = "json" if name == "status" else "text"
            processes.start(name, settings.replace(observe_port=port, log_format=log_format))
            addresses[name] = f"http://127.0.0.1:{port}"
        processes.start("web")
        try:
            for part, address in addresses.items():
                wait_for(lambda: ready(address), timeout=60, what=f"{part} to be ready")
            yield ObservedShop(settings, processes, addresses, receiver)
        finally:
            processes.stop_all()
            print(processes.log_tail())


def ready(address: str) -> bool:
    try:
        return httpx.get(f"{address}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def place_through_the_web(shop: ObservedShop, count: int) -> list[str]:
    with httpx.Client(base_url=shop.addresses["web"], timeout=10) as client:
        assert client.post("/api/session", json={"name": "Italo"}).status_code == 201
        answers = [client.post("/api/orders", json=ORDER) for _ in range(count)]
    assert [a.status_code for a in answers] == [201] * count, [a.text for a in answers]
    return [str(a.json()["order_id"]) for a in answers]


def place_from_the_terminal(shop: ObservedShop) -> str:
    command = "order --name Italo --sauce Tomato --cheese Mozzarella --main-topping Pepperoni"
    done = subprocess.run(
        [sys.executable, "-m", "pizzashop", *command.split()],
        env={**os.environ, **as_environment(shop.settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"Order (\S+) placed", done.stdout)
    assert found, done.stdout
    return found.group(1)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus's text format (0 when it is not there)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            sample, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in sample for k, v in labels.items()):
                return float(value)
    return 0.0


def test_every_part_answers_health_and_readiness(observed: ObservedShop) -> None:
    for part, address in observed.addresses.items():
        health = httpx.get(f"{address}/healthz", timeout=5)
        readiness = httpx.get(f"{address}/readyz", timeout=5)
        assert health.status_code == 200, part
        assert readiness.status_code == 200, (part, readiness.text)
        assert readiness.json()["ready"] is True
        assert httpx.get(f"{address}/nothing-here", timeout=5).status_code == 404
    readiness = httpx.get(f"{observed.addresses['assemble']}/readyz", timeout=5).json()
    assert readiness["service"] == "assemble"
    assert readiness["partitions"] == len(SERVICES["assemble"]) * observed.settings.partitions


def test_metrics_count_what_each_part_did(observed: ObservedShop) -> None:
    order_ids = place_through_the_web(observed, 3)
    wait_until_delivered(open_readmodel(observed.settings.readmodel_url), order_ids, timeout=60)

    def scrape(part: str) -> str:
        return httpx.get(f"{observed.addresses[part]}/metrics", timeout=5).text

    assemble = scrape("assemble")
    consumed = "pizzashop_events_consumed_total"
    assert metric(assemble, consumed, service="assemble", topic="pizza-ordered") >= 3
    assert metric(assemble, "pizzashop_events_produced_total", topic="pizza-assembled") >= 3
    assert metric(assemble, "pizzashop_handler_duration_seconds_count", service="assemble") >= 1
    assert metric(assemble, "pizzashop_commit_duration_seconds_count", service="assemble") >= 1
    assert "pizzashop_consumer_lag_records{" in assemble
    wait_for(
        lambda: (
            metric(scrape("status"), "pizzashop_stage_duration_seconds_count", stage="delivery")
            >= 3
        ),
        timeout=30,
        what="the status service to time the delivery stage",
    )
    status = scrape("status")
    assert metric(status, "pizzashop_orders", status="400") >= 3
    assert metric(status, "pizzashop_stage_duration_seconds_count", stage="assemble") >= 3
    web = scrape("web")
    assert metric(web, "pizzashop_http_requests_total", route="/api/orders", code="201") >= 3


def test_each_order_is_one_connected_trace_from_the_request_to_the_read_model(
    observed: ObservedShop,
) -> None:
    order_ids = [*place_through_the_web(observed, 2), place_from_the_terminal(observed)]
    wait_until_delivered(open_readmodel(observed.settings.readmodel_url), order_ids, timeout=60)
    for order_id in order_ids:
        spans = wait_for(
            lambda: complete_trace(observed.receiver.received(), order_id),
            timeout=30,
            what=f"the spans of order {order_id}",
        )
        assert_connected(spans, order_id)
        assert_story_names_the_trace(observed, order_id, spans[0].trace_id)
    assert_json_log_lines_name_the_orders(observed, order_ids)


EVERY_PART = {"assemble", "bake", "delivery", "status"}


def complete_trace(spans: list[ReceivedSpan], order_id: str) -> list[ReceivedSpan] | None:
    """The spans of the trace of this order, once one from every part is in."""
    trace_ids = {s.trace_id for s in spans if s.attributes.get("pizzashop.order_id") == order_id}
    if len(trace_ids) != 1:
        return None
    trace = [s for s in spans if s.trace_id in trace_ids]
    services = {s.service for s in trace}
    if not services >= EVERY_PART or not services & {"web", "cli"}:
        return None
    if sum(1 for s in trace if s.service == "status") < 4:  # placed, 200, 300 and 400
        return None
    return trace


def assert_connected(spans: list[ReceivedSpan], order_id: str) -> None:
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_id]
    assert len(roots) == 1, f"{order_id}: roots {[(r.service, r.name) for r in roots]}"
    orphans = [s for s in spans if s.parent_id and s.parent_id not in ids]
    assert not orphans, f"{order_id}: parents missing for {[(s.service, s.name) for s in orphans]}"
    for span in spans:
        if span.service in EVERY_PART:
            assert span.attributes["messaging.destination.name"], span
            assert int(str(span.attributes["messaging.destination.partition.id"])) >= 0
            assert int(str(span.attributes["messaging.kafka.offset"])) >= 0


@pytest.mark.faults
def test_readiness_goes_to_503_while_the_broker_is_away_and_back_after(
    shop_settings: Settings, kafka_broker: Broker
) -> None:
    if kafka_broker.local is None:
        pytest.skip("the tests run against an outside cluster, which they do not restart")
    shop = RunningShop(shop_settings)
    loop = shop.start("assemble")
    server = ObserveServer("127.0.0.1", 0, loop.readiness).start()
    web = TestClient(
        create_app(shop_settings, shop.read_model(), OrderTaker(shop_settings, timeout=5))
    )

    def answers() -> tuple[int, int]:
        return httpx.get(f"{server.url}/readyz", timeout=5).status_code, web.get(
            "/readyz"
        ).status_code

    try:
        wait_for(lambda: answers() == (200, 200), timeout=60, what="both to be ready")
        kafka_broker.local.stop_node(0)
        wait_for(lambda: answers() == (503, 503), timeout=60, what="both to say not ready")
        missing = httpx.get(f"{server.url}/readyz", timeout=5).json()["missing"]
        assert missing, "a service that is not ready says why"
        assert "does not answer" in web.get("/readyz").json()["missing"][0]
        kafka_broker.local.start_node(0)
        wait_for(lambda: answers() == (200, 200), timeout=90, what="both to be ready again")
    finally:
        server.close()
        shop.stop_all()


def assert_story_names_the_trace(shop: ObservedShop, order_id: str, trace_id: str) -> None:
    """`pizzashop trace` shows the trace id each record carries: the order's one trace."""
    done = subprocess.run(
        [sys.executable, "-m", "pizzashop", "trace", order_id, "--json"],
        env={**os.environ, **as_environment(shop.settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)["records"]
    pipeline = [r for r in records if r["topic"] in PIPELINE_TOPIC_NAMES]
    assert len(pipeline) >= 6, records  # ordered, assembled, baked, and 200, 300, 400
    assert {r["trace_id"] for r in pipeline} == {trace_id}


def assert_json_log_lines_name_the_orders(shop: ObservedShop, order_ids: list[str]) -> None:
    """The status service logs JSON here: every line an object, its orders' lines with a trace."""
    lines = [json.loads(line) for line in (shop.processes.log_dir / "status-0.log").open()]
    assert {"time", "level", "service", "order_id", "trace_id", "message"} <= lines[0].keys()
    about = [line for line in lines if line["order_id"] in order_ids]
    assert about and all(line["trace_id"] for line in about), about[:3]
