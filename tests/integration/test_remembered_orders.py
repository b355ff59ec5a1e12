"""What a service reads back on start about the orders it handled: its own statuses on
pizza-status, as far back as it remembers and no further."""

from __future__ import annotations

import json
import secrets
import threading

from confluent_kafka import Producer

from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Status, Topic, now_ms
from pizzashop.kafka.topics import create_state_topic
from pizzashop.runtime.changelog import read_changelog, read_handled
from pizzashop.service import HANDLED
from tests.shop_harness import wait_for

DAY = 24 * 3600 * 1000


def test_a_service_remembers_the_orders_its_statuses_name_within_its_window(
    shop_settings: Settings,
) -> None:
    now, run = now_ms(), secrets.token_hex(4)
    producer = Producer(kafka_client_config(shop_settings))
    statuses = [
        (f"old-{run}", 200, now - 2 * DAY),
        (f"new-{run}", 200, now),
        (f"invalid-{run}", 500, now),
        (f"baked-{run}", 300, now),
    ]
    for order_id, status, at in statuses:
        producer.produce(
            str(Topic.STATUS),
            key=order_id,
            partition=5,
            timestamp=at,
            value=json.dumps({"status": status, "timestamp": at}),
        )
    producer.produce(str(Topic.STATUS), key=f"garbage-{run}", value=b"{not json", partition=5)
    assert producer.flush(10) == 0

    def remembered() -> dict[str, str]:
        return {
            change.order_id: change.value
            for change in read_handled(
                shop_settings,
                {5},
                frozenset({Status.IN_OVEN, Status.INVALID_ORDER}),
                since_ms=now - DAY,
                committed_only=True,
            )
            if change.order_id.endswith(run)
        }

    # A read_committed reader stops before a transaction still open on the partition (a
    # service of an earlier test, killed mid-transaction, until the broker aborts it).
    wait_for(
        lambda: f"invalid-{run}" in remembered(), timeout=30, what="the statuses to be readable"
    )
    assert remembered() == {f"new-{run}": HANDLED, f"invalid-{run}": HANDLED}, (
        "assemble's statuses from the last day only (not bake's, not older, not garbage)"
    )


def test_a_restore_includes_a_transaction_that_commits_while_it_starts(
    shop_settings: Settings,
) -> None:
    """The last owner's final commit is confirmed before its markers reach the changelog; a
    new owner that read to the end at once would miss that state (found by the chaos run:
    an early warning lost, the order stuck after its pizza was baked)."""
    topic = f"pizza_remembering-{secrets.token_hex(3)}"
    create_state_topic(shop_settings, topic, partitions=1)
    producer = Producer(
        {**kafka_client_config(shop_settings), "transactional.id": f"last-owner-{topic}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"order-1", value=b'{"customer_id": "c-1"}', partition=0)
    assert producer.flush(10) == 0, "the state was not written"
    committing = threading.Timer(0.5, lambda: producer.commit_transaction(30))
    committing.start()
    try:
        changes = list(read_changelog(shop_settings, topic, {0}, committed_only=True))
    finally:
        committing.join()
    assert [(c.order_id, c.value) for c in changes] == [("order-1", {"customer_id": "c-1"})]
