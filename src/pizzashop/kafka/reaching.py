"""Whether the broker answers, told in seconds: a command asks before it works, so a broker
that is away is one line naming its address, not half a minute's wait and a traceback.

A secured broker that refuses the credentials, or whose certificate is not trusted, is told
apart at once: retrying cannot mend either, and both would otherwise look like a broker away.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from pizzashop.config import Settings, kafka_client_config

REACH_TIMEOUT = 5.0  # seconds for the broker to answer a metadata request at all
# The first wait for an answer; each next one is twice as long, so a refusal is seen within a
# second or so, and a cluster far away still has whole seconds to answer one request.
FIRST_ASK = 0.25
BROKER_ADVICE = "is the shop running (make run), or is PIZZASHOP_BOOTSTRAP_SERVERS right?"
# librdkafka's error text starts with the broker's name and ends with the state it failed in.
BROKER_PREFIX = re.compile(r"^\S+://\S+: ")
STATE_SUFFIX = re.compile(r" \(after \d+ms in state [^)]*\)$")


class Unreachable(ConnectionError):
    """The broker or the database did not answer: where it was looked for, and what to do."""

    def __init__(self, what: str, address: str, timeout: float, advice: str) -> None:
        self.address = address
        super().__init__(f"cannot reach {what} at {address} within {timeout:g}s: {advice}")


class BrokerRefused(Unreachable):
    """The broker answered, but refused the credentials or could not be trusted."""

    def __init__(self, address: str, line: str) -> None:
        self.address = address
        ConnectionError.__init__(self, line)  # the whole line is said by `refusal`


class RegistryRefused(ValueError):
    """The Schema Registry answered and refused (a breaking schema, most likely, or the
    credentials): what was asked and the registry's reason, in one line."""

    def __init__(self, asked: str, http_status: int, reason: object) -> None:
        self.http_status = http_status
        said = " ".join(str(reason).split())
        super().__init__(f"the Schema Registry refused {asked} (HTTP {http_status}): {said}")


def broker_address(settings: Settings, bootstrap_servers: str | None = None) -> str:
    """The bootstrap servers every client of the shop starts from."""
    return str(kafka_client_config(settings, bootstrap_servers)["bootstrap.servers"])


def check_broker(
    settings: Settings, bootstrap_servers: str | None = None, timeout: float = REACH_TIMEOUT
) -> None:
    """Unreachable unless the cluster answers a metadata request within `timeout`;
    BrokerRefused as soon as it refuses the credentials or its certificate is not trusted."""
    heard: list[KafkaError] = []
    # Any: the client types a config's values as plain ones, but takes callbacks too.
    config: dict[str, Any] = {
        **kafka_client_config(settings, bootstrap_servers),
        "error_cb": heard.append,
    }
    admin = AdminClient(config)
    address = broker_address(settings, bootstrap_servers)
    deadline, wait = time.monotonic() + timeout, FIRST_ASK
    while True:
        try:
            admin.list_topics(timeout=min(wait, max(deadline - time.monotonic(), 0.01)))
            return
        except KafkaException as e:
            admin.poll(0)  # serves error_cb: what the client met while it tried
            line = _first_refusal(heard, address, settings)
            if line is not None:
                raise BrokerRefused(address, line) from e
            if time.monotonic() >= deadline:
                raise Unreachable("the Kafka broker", address, timeout, BROKER_ADVICE) from e
            wait *= 2


def refusal(error: KafkaError, address: str, settings: Settings) -> str | None:
    """The one line for a client error that retrying cannot mend: the credentials refused, or
    the broker's certificate not trusted. None for any other error."""
    reason = STATE_SUFFIX.sub("", BROKER_PREFIX.sub("", error.str()))
    source = _properties_source(settings.kafka_properties_file)
    if error.code() == KafkaError._AUTHENTICATION:
        return f"the Kafka broker at {address} refused the credentials in {source}: {reason}"
    if error.code() == KafkaError._SSL and "certificate verify failed" in reason:
        return (
            f"the TLS certificate of the Kafka broker at {address} is not trusted by "
            f"ssl.ca.location in {source} (certificate verify failed)"
        )
    if error.code() == KafkaError._SSL:
        return f"the TLS handshake with the Kafka broker at {address} failed: {reason}"
    return None


def _first_refusal(errors: list[KafkaError], address: str, settings: Settings) -> str | None:
    lines = (refusal(error, address, settings) for error in errors)
    return next((line for line in lines if line is not None), None)


def _properties_source(path: Path | None) -> str:
    return str(path) if path is not None else "the settings (no PIZZASHOP_KAFKA_PROPERTIES_FILE)"
