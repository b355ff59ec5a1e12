"""The wire contract as an AsyncAPI 3.0 document (`schemas/asyncapi.yaml`): each topic a channel
with its key and value schemas, partitions and Kafka bindings, and who sends and who receives
it, all made from `contract` and the JSON Schemas of `schemas`; the same bytes for the same
contract, so a test can hold the committed file to it.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import yaml

from pizzashop import __version__
from pizzashop.config import Settings
from pizzashop.contract import (
    COMMAND_SIDE,
    OPERATOR,
    PARTITIONER,
    PRODUCES,
    SERVICES,
    TOPIC_OF,
    VALUE_MODELS,
    Topic,
    group_id,
)
from pizzashop.contract.deadletter import (
    DLQ_ERROR,
    DLQ_SERVICE,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_TOPIC,
    DeadLetter,
)
from pizzashop.schemas import Schema, generated_schemas

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DOCUMENT_NAME = "asyncapi.yaml"
JSON_VALUE = "application/json"
ANY_BYTES = "application/octet-stream"
# The settings' defaults, read without the environment: the document is the same everywhere.
DEFAULTS = Settings.model_construct()

DESCRIPTION = f"""\
The events of pizzashop, a pizza takeaway shop run as event-driven services on Apache Kafka:
each topic, the shape of its records, who sends them and who receives them.

Keys are the order id as UTF-8 text, not JSON (in `pizza-dlq`, the parked record's key).
Values are UTF-8 JSON (`pizza-baked`'s is empty); a consumer tolerates extra fields and a
missing `timestamp`. With a Schema Registry configured, JSON values are framed in Confluent's
wire format (a 0 byte, the 4-byte schema id, then the JSON; the subject is the topic's name
and `-value`); every consumer reads framed and plain values alike.

Orders are placed with librdkafka's `{PARTITIONER}` partitioner, where a JVM client's murmur2
puts the key, and every later record of an order goes to the partition number its order was
placed on: the topics an order passes through have the same partition count,
{DEFAULTS.partitions} unless `PIZZASHOP_PARTITIONS` says otherwise. What a service cannot
decode or handle it parks in `pizza-dlq`, with where it came from and why in its headers.

Made from the contract (`src/pizzashop/contract/`) by `pizzashop schemas write`, beside the
JSON Schema of each topic's key and value: change the contract, not this document.
"""

# What each part of the shop is, as its operations say it.
ROLES: dict[str, str] = {
    COMMAND_SIDE: "The command side: the web app, `pizzashop order` and `pizzashop cancel`, "
    "and restocks from the operator's page.",
    "assemble": "assemble: has the pantry reserve each order's ingredients, assembles it and "
    "sends it to the oven, and decides each race between a cancel and the assembly.",
    "pantry": "pantry: the one decider of every ask of the stock, all of an order's "
    "ingredients or none; it answers on the order's partition and publishes each level.",
    "bake": "bake: bakes each assembled pizza.",
    "delivery": "delivery: learns of each order early and delivers it once it is baked.",
    "status": "status: the query side's read model, and the watchdog that marks stuck orders.",
    OPERATOR: "The operator: `pizzashop retry` sends a stopped order's missing step again, "
    "`pizzashop dlq replay` a parked record back to the topic it was read from, "
    "`pizzashop pantry restock` more of an ingredient.",
}

# Where a framed value carries its schema's id, when a Schema Registry is configured.
REGISTRY_FRAMING = {"schemaIdLocation": "payload", "schemaIdPayloadEncoding": "confluent"}

PARKED_HEADERS: dict[str, str] = {
    DLQ_SOURCE_TOPIC: "the topic the parked record was read from",
    DLQ_SOURCE_PARTITION: "its partition, in decimal digits",
    DLQ_SOURCE_OFFSET: "its offset, in decimal digits",
    DLQ_ERROR: "why it was parked",
    DLQ_SERVICE: "the service that parked it",
}


def asyncapi_document() -> dict[str, Any]:
    """The document, as plain data in the order it is written."""
    schemas = _asyncapi_schemas()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "pizzashop", "version": __version__, "description": DESCRIPTION},
        "defaultContentType": JSON_VALUE,
        "servers": {
            "local": {
                "host": DEFAULTS.local_bootstrap_servers,
                "protocol": "kafka",
                "description": "The local Apache Kafka broker the shop starts when no "
                "bootstrap servers are configured (`make run`, `pizzashop kafka start`).",
            }
        },
        "channels": {str(topic): _channel(topic) for topic in Topic},
        "operations": _operations(),
        "components": {
            "schemas": {
                name: schema for name, schema in schemas.items() if not name.endswith(".key")
            },
            "messages": {_message_name(topic): _message(topic, schemas) for topic in Topic},
        },
    }


class _Dumper(yaml.SafeDumper):
    """YAML as people read it: a text of several lines as a block, its lines as written, and
    no anchors and aliases, whatever is shared in the data."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    )


_Dumper.add_representer(str, _text)


def asyncapi_text() -> str:
    """The document as `schemas/asyncapi.yaml` holds it."""
    made = yaml.dump(
        asyncapi_document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return "# Made from the contract by `pizzashop schemas write`: do not edit.\n" + made


def asyncapi_json() -> str:
    """The same document as JSON."""
    return json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n"


def write_asyncapi(directory: Path) -> Path:
    """Write the document into `directory`, replacing the one there; the file written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DOCUMENT_NAME
    path.write_text(asyncapi_text())
    return path


# --- channels and operations -----------------------------------------------------------------


def _channel(topic: Topic) -> dict[str, Any]:
    name = _message_name(topic)
    return {
        "address": str(topic),
        "description": _senders_and_receivers(topic),
        "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        "bindings": {
            "kafka": {
                "topic": str(topic),
                "partitions": DEFAULTS.partitions,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _senders_and_receivers(topic: Topic) -> str:
    senders = [part for part, sent in PRODUCES.items() if topic in sent]
    receivers = [f"{name} (group `{group_id(name)}`)" for name, read in SERVICES.items()
                 if topic in read]  # fmt: skip
    if not receivers:
        receivers = ["no service (`pizzashop dlq list`, `show` and `replay` read it)"]
    return f"Sent by {', '.join(senders)}. Received by {', '.join(receivers)}."


def _operations() -> dict[str, Any]:
    """Each part's operations: what it receives, then what it sends."""
    operations: dict[str, Any] = {}
    for part in dict.fromkeys([*PRODUCES, *SERVICES]):
        for topic in SERVICES.get(part, ()):
            operations[f"{part}.receive.{topic}"] = _operation("receive", part, topic)
        for topic in PRODUCES.get(part, ()):
            operations[f"{part}.send.{topic}"] = _operation("send", part, topic)
    return operations


def _operation(action: str, part: str, topic: Topic) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{topic}"},
        "summary": ROLES[part],
        "tags": [{"name": part}],
        "messages": [{"$ref": f"#/channels/{topic}/messages/{_message_name(topic)}"}],
    }
    if action == "receive":  # a service's instances share its consumer group
        group = {"type": "string", "enum": [group_id(part)]}
        operation["bindings"] = {
            "kafka": {"groupId": group, "bindingVersion": KAFKA_BINDING_VERSION}
        }
    return operation


# --- messages and their schemas --------------------------------------------------------------


def _message_name(topic: Topic) -> str:
    """The event a topic carries, by its name in the contract: `OrderPlaced`, ..."""
    if topic is Topic.DEAD_LETTER:
        return DeadLetter.__name__
    return next(event.__name__ for event, its_topic in TOPIC_OF.items() if its_topic is topic)


def _message(topic: Topic, schemas: dict[str, Schema]) -> dict[str, Any]:
    parked = topic is Topic.DEAD_LETTER
    message: dict[str, Any] = {
        "name": _message_name(topic),
        "summary": _summary(topic),
        "contentType": ANY_BYTES if parked else JSON_VALUE,
        "payload": {"$ref": f"#/components/schemas/{topic}.value"},
        "bindings": {
            "kafka": {
                # In place, not a $ref: the 3.0.0 schema's `oneOf` (a Reference or a Schema)
                # refuses a key that is a $ref, since a $ref is both.
                "key": schemas[f"{topic}.key"],
                **({} if parked else REGISTRY_FRAMING),
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    if parked:
        message["headers"] = {
            "type": "object",
            "properties": {
                name: {"type": "string", "description": meaning}
                for name, meaning in PARKED_HEADERS.items()
            },
            "required": list(PARKED_HEADERS),
        }
    return message


def _summary(topic: Topic) -> str:
    """The first sentence of what the contract says of the topic's value."""
    if topic is Topic.DEAD_LETTER:
        documented: type = DeadLetter
    elif topic in VALUE_MODELS:
        documented = VALUE_MODELS[topic]
    else:
        return f"The order id alone: the value of `{topic}` is empty."
    text = " ".join(inspect.cleandoc(documented.__doc__ or "").split())
    return text.split(". ")[0].removesuffix(".") + "."


def _asyncapi_schemas() -> dict[str, Schema]:
    """The JSON Schemas of `schemas/`, by file name without `.json`, as AsyncAPI Schema Objects
    (JSON Schema draft-07 and more): without their own `$schema` and `$id`, and their `$defs`
    beside them in `components/schemas`, pointed to from there."""
    schemas: dict[str, Schema] = {}
    shared: dict[str, Schema] = {}
    for file_name, published in generated_schemas().items():
        schema = _refs_to_components(published)
        for name, definition in schema.pop("$defs", {}).items():
            if shared.setdefault(name, definition) != definition:
                raise ValueError(f"two schemas define {name!r}, differently")
        schema.pop("$schema", None)
        schema.pop("$id", None)
        schemas[file_name.removesuffix(".json")] = schema
    if set(schemas) & set(shared):
        raise ValueError(f"a definition has a schema's name: {sorted(set(schemas) & set(shared))}")
    return {**schemas, **shared}


def _refs_to_components(node: Any) -> Any:
    """`node` with each `$ref` to a schema's own `$defs` pointing into `components/schemas`."""
    if isinstance(node, dict):
        return {
            key: "#/components/schemas/" + value.removeprefix("#/$defs/")
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/")
            else _refs_to_components(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_refs_to_components(item) for item in node]
    return node
