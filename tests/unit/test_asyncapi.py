"""The AsyncAPI document: committed as the contract makes it, the same bytes wherever it is made,
valid against the official AsyncAPI 3.0.0 JSON Schema (kept in tests/asyncapi/, so no network),
every reference in it leading somewhere, and saying what the contract says: each topic, its
partitions, its key and value, who sends it and who receives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from pizzashop import __version__, contract
from pizzashop.asyncapi import asyncapi_text
from pizzashop.cli import main
from pizzashop.config import Settings
from pizzashop.contract import PRODUCES, SERVICES, Topic, decode, group_id
from pizzashop.schemas import generated_schemas
from tests.unit.test_schemas import REGENERATE, SCHEMAS, recorded_events

DOCUMENT = SCHEMAS / "asyncapi.yaml"
ASYNCAPI_SCHEMA = Path(__file__).parents[1] / "asyncapi" / "asyncapi-3.0.0.schema.json"

Document = dict[str, Any]
DEFAULTS = Settings.model_construct()  # the settings' defaults, whatever the environment says


@pytest.fixture(scope="module")
def asyncapi_3() -> Draft7Validator:
    """The official schema of an AsyncAPI 3.0.0 document (JSON Schema draft-07)."""
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def committed() -> Document:
    document: Document = yaml.safe_load(DOCUMENT.read_text())
    return document


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def resolved(document: Document, reference: str) -> Any:
    """What a reference inside the document (`#/components/...`) names; KeyError if nothing."""
    assert reference.startswith("#/"), f"{reference} leads out of the document"
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


# --- made from the contract, the same every time -----------------------------------------------


def test_the_committed_document_is_what_the_contract_makes() -> None:
    assert DOCUMENT.read_text() == asyncapi_text(), (
        f"schemas/asyncapi.yaml differs from the contract: {REGENERATE}"
    )


def test_the_document_is_the_same_whatever_the_settings_and_the_hash_seed() -> None:
    environment = {**os.environ, "PYTHONHASHSEED": "7", "PIZZASHOP_PARTITIONS": "3",
                   "PIZZASHOP_KAFKA_PORT": "19092"}  # fmt: skip
    made_elsewhere = subprocess.run(
        [sys.executable, "-c", "from pizzashop.asyncapi import asyncapi_text as t; print(t(), end='')"],
        env=environment, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert made_elsewhere == asyncapi_text()


def test_the_command_writes_the_document_beside_the_schemas(tmp_path: Path) -> None:
    env = {"PIZZASHOP_STATE_DIR": str(tmp_path / "state")}
    command = ["schemas", "write", "--directory", str(tmp_path / "schemas")]
    written = CliRunner().invoke(main, command, env=env)
    assert written.exit_code == 0, written.output
    assert "asyncapi.yaml" in written.output
    assert (tmp_path / "schemas" / "asyncapi.yaml").read_text() == asyncapi_text()


# --- valid AsyncAPI 3.0.0 --------------------------------------------------------------------


def test_the_document_is_valid_asyncapi_3(asyncapi_3: Draft7Validator) -> None:
    error = best_match(asyncapi_3.iter_errors(committed()))
    assert error is None, f"not valid AsyncAPI 3.0.0 at {error.json_path}: {error.message}"


def inside(document: Document, path: tuple[str, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def without(*path: str) -> Callable[[Document], None]:
    def remove(document: Document) -> None:
        del inside(document, path[:-1])[path[-1]]

    return remove


def changed(value: Any, *path: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        inside(document, path[:-1])[path[-1]] = value

    return change


@pytest.mark.parametrize(
    "spoil",
    [
        without("info", "version"),
        without("operations", "assemble.receive.pizza-ordered", "action"),
        changed("publish", "operations", "ordering.send.pizza-ordered", "action"),
        changed(0, "channels", "pizza-ordered", "bindings", "kafka", "partitions"),
        changed("2.6.0", "asyncapi"),
        changed(-1, "components", "schemas", "Order", "properties", "name", "maxLength"),
        changed({"topic": "pizza-ordered"}, "channels", "pizza-ordered", "kafka"),
    ],
    ids=["no info.version", "no action", "an AsyncAPI 2 action", "no partitions",
         "another version", "a broken value schema", "a field AsyncAPI does not have"],
)  # fmt: skip
def test_the_schema_refuses_a_document_that_is_not_asyncapi_3(
    asyncapi_3: Draft7Validator, spoil: Callable[[Document], None]
) -> None:
    document = committed()
    spoil(document)
    assert not asyncapi_3.is_valid(document), "the spoiled copy passed: the check checks nothing"


def test_every_reference_leads_somewhere_in_the_document() -> None:
    document = committed()
    found = list(references(document))
    assert len(found) > len(Topic) * 3
    for reference in found:
        try:
            resolved(document, reference)
        except KeyError:
            pytest.fail(f"{reference} leads nowhere")


# --- what it says ------------------------------------------------------------------------------


def test_the_document_names_the_shop_its_version_and_the_local_broker() -> None:
    document = committed()
    assert document["info"]["version"] == __version__
    assert document["defaultContentType"] == "application/json"
    local = document["servers"]["local"]
    assert local == {**local, "protocol": "kafka", "host": DEFAULTS.local_bootstrap_servers}


def test_every_topic_is_a_channel_with_its_partitions_and_its_key() -> None:
    document = committed()
    assert set(document["channels"]) == {str(topic) for topic in Topic}
    for topic in Topic:
        channel = document["channels"][topic]
        assert channel["address"] == topic
        kafka = channel["bindings"]["kafka"]
        assert (kafka["topic"], kafka["partitions"]) == (topic, DEFAULTS.partitions)
        (message,) = (resolved(document, m["$ref"]) for m in channel["messages"].values())
        key = {**generated_schemas()[f"{topic}.key.json"]}
        del key["$schema"], key["$id"]
        assert message["bindings"]["kafka"]["key"] == key, f"{topic}'s key is not its schema's"


def test_operations_are_who_sends_and_who_receives_each_topic() -> None:
    sent, received = set(), set()
    for name, operation in committed()["operations"].items():
        part = name.split(".")[0]
        topic = operation["channel"]["$ref"].removeprefix("#/channels/")
        if operation["action"] == "send":
            sent.add((part, topic))
        else:
            received.add((part, topic))
            group = operation["bindings"]["kafka"]["groupId"]
            assert group["enum"] == [group_id(part)], f"{name} is not in its service's group"
    assert sent == {(part, str(t)) for part, topics in PRODUCES.items() for t in topics}
    assert received == {(part, str(t)) for part, topics in SERVICES.items() for t in topics}


def value_schema(document: Document, topic: str) -> Draft7Validator:
    """A validator of `topic`'s value as the document has it, its references read in it."""
    (message,) = document["channels"][topic]["messages"].values()
    payload = resolved(document, message["$ref"])["payload"]
    # Beside a $ref, draft-07 ignores the rest: it is only there for the $ref to be read in.
    return Draft7Validator({**payload, "components": document["components"]})


@pytest.mark.parametrize(("topic", "recorded"), recorded_events())
def test_a_recorded_event_passes_the_documents_schemas(
    topic: str, recorded: dict[str, Any]
) -> None:
    document = committed()
    (message,) = document["channels"][topic]["messages"].values()
    key = resolved(document, message["$ref"])["bindings"]["kafka"]["key"]
    Draft7Validator(key).validate(recorded["key"])
    if topic in contract.VALUE_MODELS:  # JSON values; the others are not JSON at all
        value_schema(document, topic).validate(json.loads(recorded["value"]))


def test_what_the_contract_refuses_the_document_refuses() -> None:
    refused = {"status": 999, "timestamp": 5}
    with pytest.raises(contract.ContractError):
        decode(Topic.STATUS, b"k", json.dumps(refused).encode())
    assert not value_schema(committed(), Topic.STATUS).is_valid(refused)
    order = {"order": {"customer_id": "c1", "name": "Italo", "sauce": "Tomato"}}  # half an order
    assert not value_schema(committed(), Topic.ORDERED).is_valid(order)
