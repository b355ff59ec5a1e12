"""Whether the broker answers, told in seconds: a command asks before it works, so a broker
that is away is one line naming its address, not half a minute's wait and a traceback."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pizzashop.config import Settings, kafka_client_config

REACH_TIMEOUT = 5.0  # seconds for the broker to answer a metadata request at all
BROKER_ADVICE = "is the shop running (make run), or is PIZZASHOP_BOOTSTRAP_SERVERS right?"


class Unreachable(ConnectionError):
    """The broker or the database did not answer: where it was looked for, and what to do."""

    def __init__(self, what: str, address: str, timeout: float, advice: str) -> None:
        self.address = address
        super().__init__(f"cannot reach {what} at {address} within {timeout:g}s: {advice}")


def broker_address(settings: Settings, bootstrap_servers: str | None = None) -> str:
    """The bootstrap servers every client of the shop starts from."""
    return str(kafka_client_config(settings, bootstrap_servers)["bootstrap.servers"])


def check_broker(
    settings: Settings, bootstrap_servers: str | None = None, timeout: float = REACH_TIMEOUT
) -> None:
    """Unreachable unless the cluster answers a metadata request within `timeout`."""
    admin = AdminClient(kafka_client_config(settings, bootstrap_servers))
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as e:
        address = broker_address(settings, bootstrap_servers)
        raise Unreachable("the Kafka broker", address, timeout, BROKER_ADVICE) from e
