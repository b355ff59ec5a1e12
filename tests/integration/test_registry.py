"""The shop with a real Schema Registry (the local Apicurio Registry the project starts):
records framed in Confluent's wire format, read by clients nobody here wrote, compatibility
refused by the registry, bad ids and values parked, and the registry away while orders flow."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import pizzashop
from pizzashop.config import Settings, as_environment, kafka_client_config
from pizzashop.contract import CancelRequested, Topic, framing, now_ms
from pizzashop.contract.deadletter import DLQ_ERROR
from pizzashop.kafka.jars import MAVEN_NOTES
from pizzashop.kafka.reaching import RegistryRefused
from pizzashop.kafka.records import record_headers
from pizzashop.kafka.topics import read_to_end
from pizzashop.operator.story import read_story
from pizzashop.readmodel.store import open_readmodel
from pizzashop.registry import client as registry_client
from pizzashop.registry import use_schema_registry
from pizzashop.registry.client import Registry, configured_registry, register_schemas, subject_of
from pizzashop.registry.local import LocalRegistry, runner_jar, server_folder, start_local_registry
from pizzashop.schemas import registry_schemas
from tests.conftest import Broker
from tests.ports import free_port
from tests.shop_harness import (
    RunningShop,
    an_order,
    assert_each_delivered_exactly_once,
    every_service,
    order_taker,
    place,
    wait_for,
    wait_until_delivered,
)

BURST = 12


@dataclass(frozen=True)
class StartedRegistry:
    local: LocalRegistry
    settings: Settings  # those it was started with: its state folder and port

    @property
    def url(self) -> str:
        return self.local.url


@pytest.fixture(scope="module")
def started_registry(
    tmp_path_factory: pytest.TempPathFactory, kafka_broker: Broker
) -> Iterator[StartedRegistry]:
    """The local registry, started by the project as `pizzashop registry start` does."""
    state = tmp_path_factory.mktemp("registry-state")
    settings = kafka_broker.settings.replace(state_dir=state, registry_port=free_port())
    local = start_local_registry(settings)
    try:
        yield StartedRegistry(local, settings)
    finally:
        local.stop()
    assert local.pid() is None, "the registry was left running"


@pytest.fixture
def schema_registry(started_registry: StartedRegistry) -> str:
    """The registry's URL, running (a test that stops it starts it again)."""
    return started_registry.url


@pytest.fixture
def framed_shop(shop_settings: Settings, schema_registry: str) -> Iterator[RunningShop]:
    """The four services with the registry configured, each framing what it writes."""
    settings = shop_settings.replace(schema_registry_url=schema_registry)
    use_schema_registry(settings)
    try:
        with every_service(settings) as running:
            yield running
    finally:
        framing.use(None)  # the next test's records are plain again


def client_of(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url})


def ordered_value(order_id: str) -> dict[str, Any]:
    """A `pizza-ordered` value as a producer in another language writes it, from the schema."""
    order = an_order(name=f"other-{order_id[:6]}")
    return {"status": 100, "timestamp": now_ms(), "order": order.model_dump()}


def produce(settings: Settings, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = Producer(kafka_client_config(settings))
    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(10) == 0, "the broker did not acknowledge every record"


def a_looser_schema_of_orders() -> str:
    """Another team's version of `pizza-ordered`'s schema: without the length bounds, which
    the registry takes as BACKWARD compatible. Its records name an id the shop did not make."""
    schema = json.loads(json.dumps(registry_schemas()[Topic.ORDERED]))
    for field in schema["definitions"]["Order"]["properties"].values():
        field.pop("maxLength", None)
    schema["description"] = "pizza-ordered, as the other team writes it"
    return json.dumps(schema)


def test_orders_from_jsonserializer_and_plain_json_interleaved_are_all_delivered_once(
    framed_shop: RunningShop, schema_registry: str
) -> None:
    settings, client = framed_shop.settings, client_of(schema_registry)
    ours = JSONSerializer(
        json.dumps(registry_schemas()[Topic.ORDERED]),
        client,
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    theirs = JSONSerializer(a_looser_schema_of_orders(), client)
    context = SerializationContext(str(Topic.ORDERED), MessageField.VALUE)
    records, order_ids = [], []
    for n in range(BURST):
        order_id = f"interleaved-{secrets.token_hex(6)}"
        value = ordered_value(order_id)
        writers = [ours, theirs, lambda v, _: json.dumps(v).encode()]
        records.append((order_id, writers[n % 3](value, context)))
        order_ids.append(order_id)
    assert records[0][1][:1] == records[1][1][:1] == b"\x00" and records[2][1][:1] == b"{"
    produce(settings, str(Topic.ORDERED), records)

    wait_until_delivered(framed_shop.read_model(), order_ids, timeout=60)
    assert_each_delivered_exactly_once(settings, framed_shop.read_model(), order_ids)


def test_every_record_the_shop_writes_is_framed_and_jsondeserializer_reads_it_back(
    framed_shop: RunningShop, schema_registry: str
) -> None:
    settings, since = framed_shop.settings, now_ms()
    order_ids = [place(settings, an_order()) for _ in range(4)]
    wait_until_delivered(framed_shop.read_model(), order_ids, timeout=60)
    order_taker(settings).send(CancelRequested(order_ids[0], now_ms()))  # too late, but written

    deserializer = JSONDeserializer(None, schema_registry_client=client_of(schema_registry))
    for topic in (Topic.ORDERED, Topic.ASSEMBLED, Topic.STATUS, Topic.CANCEL):
        mine = records_of(settings, topic, set(order_ids), since)
        assert mine, f"no record of these orders in {topic}"
        for value in mine:
            assert value[:1] == b"\x00", f"{topic}: a plain value {value[:40]!r}"
            context = SerializationContext(str(topic), MessageField.VALUE)
            assert isinstance(deserializer(value, context), dict), f"{topic}: {value[:40]!r}"
    baked = records_of(settings, Topic.BAKED, set(order_ids), since, keep_empty=True)
    assert baked and not any(baked), "pizza-baked values are empty, framed or not"
    view = framed_shop.read_model().orders.get_order(order_ids[1])
    assert view is not None
    statuses = [r for r in read_story(settings, view) if r.topic == Topic.STATUS]
    assert [r.service for r in statuses] == ["assemble", "bake", "delivery"], statuses
    assert all((r.value or "").startswith("(schema ") for r in statuses), statuses


def records_of(
    settings: Settings, topic: Topic, order_ids: set[str], since: int, keep_empty: bool = False
) -> list[bytes]:
    values = []
    for message in read_to_end(settings, str(topic), since_ms=since - 1000):
        if (message.key() or b"").decode() in order_ids and (message.value() or keep_empty):
            values.append(message.value() or b"")
    return values


def test_a_breaking_schema_is_refused_by_the_registry_with_its_reason(
    schema_registry: str, shop_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = configured_registry(shop_settings.replace(schema_registry_url=schema_registry))
    assert registry is not None
    register_schemas(registry, set_compatibility=True)
    breaking = json.loads(json.dumps(registry_schemas()))
    status = breaking[Topic.STATUS]
    status["properties"]["kitchen"] = {"type": "string"}
    status["required"] = [*status["required"], "kitchen"]
    monkeypatch.setattr(registry_client, "registry_schemas", lambda: breaking)

    with pytest.raises(RegistryRefused) as refused:
        register_schemas(registry)
    said = str(refused.value)
    assert subject_of(Topic.STATUS) in said and "HTTP 409" in said, said
    assert "required" in said and "\n" not in said, said
    assert client_of(schema_registry).get_compatibility(subject_of(Topic.STATUS)) == "BACKWARD"


def test_unknown_schema_ids_and_values_that_break_their_schema_are_parked_with_the_reason(
    framed_shop: RunningShop, schema_registry: str
) -> None:
    settings, since = framed_shop.settings, now_ms()
    theirs_id = client_of(schema_registry).register_schema(
        subject_of(Topic.ORDERED), Schema(a_looser_schema_of_orders(), "JSON")
    )
    ours_id = framing.framed(str(Topic.ORDERED), b"{}")[1:5]  # as the shop frames its orders
    good = json.dumps(ordered_value("good")).encode()
    no_order = json.dumps({"status": 100, "timestamp": now_ms()}).encode()
    bad = {
        "unknown-id": frame(987_654, good),
        "breaks-theirs": frame(theirs_id, no_order),
        "breaks-ours": b"\x00" + ours_id + no_order,
    }
    keys = {kind: f"{kind}-{secrets.token_hex(4)}" for kind in bad}
    produce(settings, str(Topic.ORDERED), [(keys[kind], value) for kind, value in bad.items()])
    fine = place(settings, an_order())  # and the shop goes on
    wait_until_delivered(framed_shop.read_model(), [fine], timeout=60)

    reasons = wait_for(lambda: parked_reasons(settings, set(keys.values()), since), 60,
                       "every bad record in pizza-dlq")  # fmt: skip
    assert "987654 is not known to the Schema Registry" in reasons[keys["unknown-id"]]
    assert f"breaks schema {theirs_id}" in reasons[keys["breaks-theirs"]]
    assert "order" in reasons[keys["breaks-ours"]]


def frame(schema_id: int, payload: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def parked_reasons(settings: Settings, keys: set[str], since: int) -> dict[str, str] | None:
    found = {}
    for message in read_to_end(settings, str(Topic.DEAD_LETTER), since_ms=since - 1000):
        key = (message.key() or b"").decode()
        if key in keys:
            headers = {k: (v or b"").decode() for k, v in record_headers(message) or []}
            found[key] = headers[DLQ_ERROR]
    return found if set(found) == keys else None


def test_the_registry_stopped_while_the_shop_runs_orders_flow_and_registering_works_after(
    framed_shop: RunningShop, started_registry: StartedRegistry
) -> None:
    settings = framed_shop.settings
    assert started_registry.local.stop()
    try:
        away = [place(settings, an_order()) for _ in range(6)]  # framed with the ids known
        wait_until_delivered(framed_shop.read_model(), away, timeout=60)
        assert_each_delivered_exactly_once(settings, framed_shop.read_model(), away)
        with pytest.raises(ConnectionError, match="cannot reach the Schema Registry at"):
            register_schemas(a_new_client(settings))  # a process starting now
        with pytest.raises(httpx2.HTTPError):
            register_theirs(settings)  # confluent-kafka's client, a registration never made before
    finally:
        started_registry.local.start(started_registry.settings)
    assert register_schemas(a_new_client(settings)) == framed_ids(settings)  # the ids kept
    assert register_theirs(settings) > 0


def a_new_client(settings: Settings) -> Registry:
    registry = configured_registry(settings)
    assert registry is not None
    return registry


def register_theirs(settings: Settings) -> int:
    subject = subject_of(Topic.ORDERED)
    schema = Schema(a_looser_schema_of_orders().replace("other team", "third team"), "JSON")
    assert settings.schema_registry_url is not None
    return client_of(settings.schema_registry_url).register_schema(subject, schema)


def framed_ids(settings: Settings) -> dict[Topic, int]:
    """The ids this process frames each topic's values with."""
    return {
        topic: int.from_bytes(framing.framed(str(topic), b"{}")[1:5], "big")
        for topic in registry_schemas()
    }


def test_up_with_the_registry_frames_every_status_and_stops_the_registry_with_the_shop(
    shop_settings: Settings, tmp_path: Path
) -> None:
    settings = shop_settings.replace(registry_port=free_port(), log_level="INFO")
    local, since = LocalRegistry.of(settings), now_ms()
    with (tmp_path / "up.log").open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "pizzashop", "up", "--no-web", "--registry"],
            env={**os.environ, **as_environment(settings)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(local.pid, 120, "the local registry to start")
        order_ids = [place(settings, an_order()) for _ in range(5)]
        wait_until_delivered(open_readmodel(settings.readmodel_url), order_ids, timeout=120)
        statuses = records_of(settings, Topic.STATUS, set(order_ids), since)
        assert statuses and all(value[:1] == b"\x00" for value in statuses), statuses[:3]
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
    shown = (tmp_path / "up.log").read_text(errors="replace")
    assert code == 0, shown[-3000:]
    assert local.pid() is None, "the registry outlived the shop"
    assert "Stopping the local Schema Registry" in shown, shown[-3000:]


def test_a_fetch_into_an_empty_cache_unpacks_the_registry_and_writes_nothing_beside_its_pom(
    tmp_path: Path,
) -> None:
    """Maven notes what it unpacked; beside the pom, in the package, a note once committed
    by mistake could make a later fetch into an empty cache skip the unpacking."""
    folder = server_folder(Settings(cache_dir=tmp_path))
    assert runner_jar(folder).is_file()
    assert not (folder / MAVEN_NOTES).exists()
    assert not (Path(pizzashop.__file__).parent / "registry" / "target").exists()
