"""The log is the source of truth: the shop's topics keep their whole history, and a topic
that keeps less is told about once, with what a rebuild or a replay would miss."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pizzashop.config import Settings, kafka_client_config
from pizzashop.kafka.topics import (
    CREATE_TIMEOUT,
    SHOP_TOPIC_NAMES,
    create_topics,
    retention_of,
    warn_of_short_history,
)
from tests.conftest import Broker

SEVEN_DAYS_MS = 7 * 24 * 3_600_000


def test_the_shops_topics_keep_their_whole_history(kafka_broker: Broker) -> None:
    found = retention_of(kafka_broker.settings, SHOP_TOPIC_NAMES, None, CREATE_TIMEOUT)
    for name in SHOP_TOPIC_NAMES:
        assert found[name] == {"retention.ms": "-1", "retention.bytes": "-1"}, (
            f"{name} should keep every record for ever, but its retention is {found[name]}"
        )


def test_a_topic_that_forgets_after_seven_days_is_warned_about(
    kafka_broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"pizza-status-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(kafka_client_config(kafka_broker.settings))
    config = {"retention.ms": str(SEVEN_DAYS_MS)}
    admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(CREATE_TIMEOUT)
    wait_until_known(admin, name)

    with caplog.at_level(logging.WARNING, logger="pizzashop.kafka.topics"):
        lines = warn_of_short_history(kafka_broker.settings, [name])

    assert len(lines) == 1 and lines[0].startswith(f"{name} keeps 7 days"), lines
    assert "miss older records" in lines[0] and "retention.ms=-1" in lines[0]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == lines


def wait_until_known(admin: AdminClient, name: str) -> None:
    """A new topic's configs can be described once the broker we ask lists it."""
    deadline = time.monotonic() + CREATE_TIMEOUT
    while name not in admin.list_topics(timeout=CREATE_TIMEOUT).topics:
        assert time.monotonic() < deadline, f"{name} was created but never listed"
        time.sleep(0.05)  # metadata reaches the broker shortly after creation


def test_starting_again_on_the_shops_topics_warns_of_nothing(
    shop_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pizzashop.kafka.topics"):
        create_topics(shop_settings)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
