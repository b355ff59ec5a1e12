"""The registry's client: registering the contract's schemas, and the `Framing` that frames
records with their ids and checks the ids of those read."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import jsonschema
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from pizzashop.config import Settings, registry_client_config
from pizzashop.contract import ContractError, Topic
from pizzashop.kafka.reaching import RegistryRefused, Unreachable
from pizzashop.schemas import registry_schemas

log = logging.getLogger("pizzashop.registry")
# httpx logs every request at INFO: a line per schema fetched, in every service's log.
logging.getLogger("httpx").setLevel(logging.WARNING)

COMPATIBILITY = "BACKWARD"
ANSWER_TIMEOUT = 5.0  # seconds for one request; the client asks again once
REGISTRY_ADVICE = (
    "is it running (pizzashop registry start), or is PIZZASHOP_SCHEMA_REGISTRY_URL right?"
)
# The client speaks HTTP with httpx2 (httpx's successor), as confluent-kafka prefers it.
CONNECTION_ERRORS = (httpx2.HTTPError, OSError)


@dataclass(frozen=True)
class Registry:
    """A client of the configured registry, and where it is."""

    client: SchemaRegistryClient
    url: str

    def unreachable(self) -> Unreachable:
        return Unreachable("the Schema Registry", self.url, ANSWER_TIMEOUT, REGISTRY_ADVICE)


def subject_of(topic: str) -> str:
    """The topic-name strategy's subject of a topic's values."""
    return f"{topic}-value"


def configured_registry(settings: Settings) -> Registry | None:
    """The configured registry (None: none is configured)."""
    config = registry_client_config(settings)
    if config is None:
        return None
    client = SchemaRegistryClient({**config, "timeout": ANSWER_TIMEOUT, "max.retries": 1})
    return Registry(client, config["url"])


def register_schemas(registry: Registry, set_compatibility: bool = False) -> dict[Topic, int]:
    """Register the contract's schemas, each under its topic's subject; the id of each.

    RegistryRefused when the registry refuses one (the schemas before it stay registered:
    registering the same schema again gives the same id); Unreachable when it does not answer.
    """
    ids = {}
    for topic, schema in registry_schemas().items():
        subject = subject_of(topic)
        try:
            if set_compatibility:
                registry.client.set_compatibility(subject, COMPATIBILITY)
            schema_text = Schema(json.dumps(schema), "JSON")
            ids[topic] = registry.client.register_schema(subject, schema_text)
        except SchemaRegistryError as e:
            asked = f"the schema of {subject}"
            raise RegistryRefused(asked, e.http_status_code, e.error_message) from None
        except CONNECTION_ERRORS:
            raise registry.unreachable() from None
    return ids


def registry_framing(settings: Settings) -> RegistryFraming:
    """The framing of the configured registry, with the contract's schemas registered."""
    registry = configured_registry(settings)
    if registry is None:
        raise ValueError("no Schema Registry is configured")
    ids = register_schemas(registry)
    log.info(
        "Records framed with the ids of the Schema Registry at %s: %s",
        registry.url,
        ", ".join(f"{topic} {schema_id}" for topic, schema_id in ids.items()),
    )
    return RegistryFraming(registry, {str(topic): schema_id for topic, schema_id in ids.items()})


@dataclass
class RegistryFraming:
    """`contract.framing.Framing` against a registry: the contract's own ids, learnt at start,
    and a validator for each other id a record names, fetched from the registry once."""

    registry: Registry
    own: Mapping[str, int]  # topic -> the id of the contract's schema of its values

    def __post_init__(self) -> None:
        self._validators: dict[int, Any] = {}

    def schema_id_for(self, topic: str) -> int | None:
        return self.own.get(topic)

    def check(self, topic: str, schema_id: int, payload: bytes) -> None:
        if self.own.get(topic) == schema_id:
            return  # the contract's own schema: decoding the value checks it, by the same rules
        validator = self._validator(schema_id)
        try:
            document = json.loads(payload)
        except ValueError as e:
            raise ContractError(f"value is not UTF-8 JSON: {e}") from None
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the value"
            raise ContractError(f"value breaks schema {schema_id}: {where}: {error.message}")

    def _validator(self, schema_id: int) -> Any:
        if schema_id not in self._validators:
            schema = json.loads(self._schema_text(schema_id))
            self._validators[schema_id] = jsonschema.validators.validator_for(schema)(schema)
        return self._validators[schema_id]

    def _schema_text(self, schema_id: int) -> str:
        try:
            return str(self.registry.client.get_schema(schema_id).schema_str)
        except SchemaRegistryError as e:
            if e.http_status_code == 404:
                raise ContractError(
                    f"schema id {schema_id} is not known to the Schema Registry at "
                    f"{self.registry.url}"
                ) from None
            raise ContractError(f"schema id {schema_id} could not be read: {e}") from None
        except CONNECTION_ERRORS:
            raise ContractError(
                f"schema id {schema_id} could not be looked up: {self.registry.unreachable()}"
            ) from None


def check_registry(settings: Settings) -> None:
    """Unreachable unless the configured registry answers (nothing to check: none configured);
    RegistryRefused when it refuses the credentials."""
    registry = configured_registry(settings)
    if registry is None:
        return
    try:
        registry.client.get_subjects()
    except CONNECTION_ERRORS:
        raise registry.unreachable() from None
    except SchemaRegistryError as e:
        asked = "the list of its subjects"
        raise RegistryRefused(asked, e.http_status_code, e.error_message) from None
