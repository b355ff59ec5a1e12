"""The registry's client: the contract's schemas registered, and the `Framing` that frames
records with their ids and checks the ids of those read.

Four calls of Confluent's REST API, made with httpx2. confluent-kafka's own
`SchemaRegistryClient` does the same, but importing it loads its OAuth support (authlib,
cryptography): 24 MB more in every process, five times over in a shop, for a bearer-token
login the shop does not use. The tests check this client against the registry with
confluent-kafka's serializers, which use its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jsonschema

from pizzashop.config import Settings, registry_client_config
from pizzashop.contract import ContractError, Topic
from pizzashop.kafka.reaching import RegistryRefused, Unreachable
from pizzashop.schemas import registry_schemas

log = logging.getLogger("pizzashop.registry")

COMPATIBILITY = "BACKWARD"
ANSWER_TIMEOUT = 5.0  # seconds for the registry to answer one request
REGISTRY_ADVICE = (
    "is it running (pizzashop registry start), or is PIZZASHOP_SCHEMA_REGISTRY_URL right?"
)
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
NOT_FOUND = 404


@dataclass(frozen=True)
class Registry:
    """Where the configured registry is, and how to ask it."""

    url: str
    user_info: str | None = None  # "key:secret", for basic auth (Confluent Cloud's API key)
    _http: httpx2.Client = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        auth = None
        if self.user_info is not None:
            user, _, password = self.user_info.partition(":")
            auth = httpx2.BasicAuth(user, password)
        client = httpx2.Client(
            base_url=self.url.rstrip("/"),
            auth=auth,
            timeout=ANSWER_TIMEOUT,
            headers={"Accept": MEDIA_TYPE, "Content-Type": MEDIA_TYPE},
        )
        object.__setattr__(self, "_http", client)

    def ask(self, method: str, path: str, asked: str, body: Any = None) -> Any:
        """The registry's answer, as JSON; RegistryRefused with its reason when it says no,
        Unreachable when it does not answer."""
        try:
            answer = self._http.request(method, path, json=body)
        except httpx2.TransportError:
            raise self.unreachable() from None
        if answer.is_success:
            return answer.json()
        try:
            reason = answer.json().get("message", answer.text)
        except ValueError:
            reason = answer.text
        raise RegistryRefused(asked, answer.status_code, reason)

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
    return Registry(config["url"], config.get("basic.auth.user.info"))


def register_schemas(registry: Registry, set_compatibility: bool = False) -> dict[Topic, int]:
    """Register the contract's schemas, each under its topic's subject; the id of each.

    RegistryRefused when the registry refuses one (the schemas before it stay registered:
    registering the same schema again gives the same id); Unreachable when it does not answer.
    """
    ids = {}
    for topic, schema in registry_schemas().items():
        subject = subject_of(topic)
        if set_compatibility:
            registry.ask("PUT", f"/config/{subject}", f"the compatibility of {subject}",
                         {"compatibility": COMPATIBILITY})  # fmt: skip
        body = {"schema": json.dumps(schema), "schemaType": "JSON"}
        answer = registry.ask(
            "POST", f"/subjects/{subject}/versions", f"the schema of {subject}", body
        )
        ids[topic] = int(answer["id"])
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
            answer = self.registry.ask("GET", f"/schemas/ids/{schema_id}", f"schema {schema_id}")
        except RegistryRefused as e:
            if e.http_status == NOT_FOUND:
                raise ContractError(
                    f"schema id {schema_id} is not known to the Schema Registry at "
                    f"{self.registry.url}"
                ) from None
            raise ContractError(f"schema id {schema_id} could not be read: {e}") from None
        except Unreachable as e:
            raise ContractError(f"schema id {schema_id} could not be looked up: {e}") from None
        return str(answer["schema"])


def check_registry(settings: Settings) -> None:
    """Unreachable unless the configured registry answers (nothing to check: none configured);
    RegistryRefused when it refuses the credentials."""
    registry = configured_registry(settings)
    if registry is not None:
        registry.ask("GET", "/subjects", "the list of its subjects")
