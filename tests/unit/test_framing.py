"""Confluent's wire format in the contract: values framed with the schema id in use, framed
and plain values read alike, what a framed value names checked by the framing in use; the
schemas a registry is given; and the registry's settings kept apart from librdkafka's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from pizzashop import contract
from pizzashop.config import kafka_client_config, load_settings, registry_client_config
from pizzashop.contract import (
    CancelRequested,
    ContractError,
    Order,
    OrderPlaced,
    PizzaBaked,
    Status,
    StatusChanged,
    Topic,
    framing,
)
from pizzashop.schemas import REGISTRY_DIALECT, registry_schemas

CORPUS = Path(__file__).parents[2] / "schemas" / "corpus"
IDS = {str(Topic.ORDERED): 7, str(Topic.STATUS): 9}


class KnownIds:
    """A framing that knows the ids in IDS and refuses any other, as a registry would."""

    def __init__(self) -> None:
        self.checked: list[tuple[str, int]] = []

    def schema_id_for(self, topic: str) -> int | None:
        return IDS.get(topic)

    def check(self, topic: str, schema_id: int, payload: bytes) -> None:
        self.checked.append((topic, schema_id))
        if IDS.get(topic) != schema_id:
            raise ContractError(f"schema id {schema_id} is not known")


@pytest.fixture
def known_ids() -> Iterator[KnownIds]:
    framing.use(in_use := KnownIds())
    yield in_use
    framing.use(None)


PIZZA = Order(customer_id="c1", name="Ann", sauce="Tomato", cheese="Gouda", main_topping="Pork")


def test_without_a_registry_values_are_plain_json() -> None:
    record = contract.encode(StatusChanged("o-1", Status.IN_OVEN, 1))
    assert json.loads(record.value) == {"status": 200, "timestamp": 1}


def test_with_a_registry_each_value_is_framed_with_its_topics_schema_id(
    known_ids: KnownIds,
) -> None:
    record = contract.encode(OrderPlaced("o-1", PIZZA, 1))
    assert record.value[:5] == b"\x00\x00\x00\x00\x07"
    assert json.loads(record.value[5:])["order"]["name"] == "Ann"
    assert contract.decode(record.topic, record.key, record.value) == OrderPlaced("o-1", PIZZA, 1)
    assert known_ids.checked == [(str(Topic.ORDERED), 7)]


def test_an_empty_value_stays_empty_and_a_topic_without_an_id_stays_plain(
    known_ids: KnownIds,
) -> None:
    assert contract.encode(PizzaBaked("o-1")).value == b""
    cancel = contract.encode(CancelRequested("o-1", 5)).value
    assert json.loads(cancel) == {"timestamp": 5}


def test_a_framed_value_reads_as_its_json_when_no_registry_is_in_use() -> None:
    plain = contract.encode(StatusChanged("o-1", Status.DELIVERED, 3))
    framed = b"\x00\x00\x00\x01\x2c" + plain.value
    assert contract.decode(plain.topic, plain.key, framed) == contract.decode(
        plain.topic, plain.key, plain.value
    )


def test_an_id_the_framing_refuses_is_a_contract_error(known_ids: KnownIds) -> None:
    value = b"\x00\x00\x00\x00\x08" + json.dumps({"status": 200}).encode()
    with pytest.raises(ContractError, match="schema id 8 is not known"):
        contract.decode(str(Topic.STATUS), b"o-1", value)


@pytest.mark.parametrize("value", [b"\x00", b"\x00\x00\x00\x07"])
def test_a_zero_byte_without_a_whole_schema_id_is_a_contract_error(value: bytes) -> None:
    with pytest.raises(ContractError, match="names no schema"):
        contract.decode(str(Topic.STATUS), b"o-1", value)


def test_the_registry_is_given_draft_07_schemas_that_every_recorded_event_passes() -> None:
    schemas = registry_schemas()
    assert set(schemas) == {
        Topic.ORDERED,
        Topic.ASSEMBLED,
        Topic.STATUS,
        Topic.CANCEL,
        Topic.PANTRY,
        Topic.RESERVED,
        Topic.STOCK,
    }
    for topic, schema in schemas.items():
        assert schema["$schema"] == REGISTRY_DIALECT
        assert "$defs" not in json.dumps(schema), topic
        jsonschema.Draft7Validator.check_schema(schema)
        validator = jsonschema.Draft7Validator(schema)
        for line in (CORPUS / f"{topic}.jsonl").read_text().splitlines():
            value = json.loads(json.loads(line)["value"])
            assert not list(validator.iter_errors(value)), (topic, value)


def test_the_properties_file_gives_the_registry_its_lines_and_librdkafka_the_rest(
    tmp_path: Path,
) -> None:
    properties = tmp_path / "client.properties"
    properties.write_text(
        "bootstrap.servers=pkc.example:9092\nsasl.username=KEY\n"
        "schema.registry.url=https://psrc.example\n"
        "basic.auth.credentials.source=USER_INFO\nbasic.auth.user.info=SR_KEY:SR_SECRET\n"
    )
    settings = load_settings(kafka_properties_file=properties, bootstrap_servers="pkc.example:9092")
    librdkafka = kafka_client_config(settings)
    assert "sasl.username" in librdkafka
    assert not [key for key in librdkafka if key.startswith(("schema.registry.", "basic.auth."))]
    assert registry_client_config(settings) == {
        "url": "https://psrc.example",
        "basic.auth.user.info": "SR_KEY:SR_SECRET",
    }
    chosen = settings.replace(schema_registry_url="http://127.0.0.1:8081/apis/ccompat/v7")
    assert registry_client_config(chosen) == {  # the setting chooses the URL, not the credentials
        "url": "http://127.0.0.1:8081/apis/ccompat/v7",
        "basic.auth.user.info": "SR_KEY:SR_SECRET",
    }


def test_no_registry_is_configured_by_default() -> None:
    assert registry_client_config(load_settings()) is None
