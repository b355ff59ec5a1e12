"""Poison events among good orders: every good order is delivered, every bad event is parked
in the dead-letter topic with its reason, and no service stops."""

from __future__ import annotations

import secrets

import pytest

from pizzashop.config import Settings
from pizzashop.contract import Topic
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.runtime.deadletters import read_dead_letters, replay
from tests.shop_harness import (
    RunningShop,
    an_order,
    place,
    produce_raw,
    wait_for,
    wait_until_delivered,
)

GOOD_ORDER = (
    '{"status": 100, "timestamp": 1676235639159, "order": {"extra_toppings": [], '
    '"customer_id": "c", "name": "Italo", "sauce": "Tomato", "cheese": "Mozzarella", '
    '"main_topping": "Pepperoni"}}'
)

POISON: dict[str, tuple[Topic, bytes]] = {
    "undecodable": (Topic.ORDERED, b"\xff\xfe\x00garbage"),
    "wrong types": (Topic.ORDERED, GOOD_ORDER.replace('"Italo"', "5").encode()),
    "missing fields": (Topic.ORDERED, b'{"status": 100, "timestamp": 1}'),
    "unknown status": (Topic.STATUS, b'{"status": 999}'),
    "huge payload": (
        Topic.ORDERED,
        GOOD_ORDER.replace('"Italo"', '"' + "x" * 100_000 + '"').encode(),
    ),
    "bad baking time": (Topic.ASSEMBLED, b'{"baking_time": "forever"}'),
    "unknown order": (Topic.STATUS, b'{"status": 200, "timestamp": 1676235639159}'),
}
UNKNOWN_AFTER = 5.0  # seconds the status service waits for an order's OrderPlaced


@pytest.fixture
def shop_settings(shop_settings: Settings) -> Settings:
    return shop_settings.replace(stuck_after=UNKNOWN_AFTER)


def parked(letters: list[DeadLetter], key: bytes) -> list[DeadLetter]:
    return [letter for letter in letters if letter.key == key]


def test_poison_events_are_parked_with_their_reason_and_good_orders_go_on(
    shop: RunningShop,
) -> None:
    keys = {kind: f"poison-{secrets.token_hex(4)}".encode() for kind in POISON}
    good_before = [place(shop.settings, an_order()) for _ in range(5)]
    for kind, (topic, value) in POISON.items():
        produce_raw(shop.settings, str(topic), keys[kind], value)
    good_after = [place(shop.settings, an_order()) for _ in range(5)]

    wait_until_delivered(shop.read_model(), good_before + good_after, timeout=60)

    def every_poison_parked() -> list[DeadLetter] | None:
        letters = read_dead_letters(shop.settings)
        return letters if all(parked(letters, key) for key in keys.values()) else None

    letters = wait_for(every_poison_parked, timeout=60, what="every poison event in pizza-dlq")
    for kind, (topic, _) in POISON.items():
        for letter in parked(letters, keys[kind]):
            assert letter.source_topic == str(topic), kind
            assert letter.source_offset >= 0 and letter.source_partition >= 0, kind
            assert letter.error and letter.service, f"{kind}: no reason or service in the headers"
    unknown = parked(letters, keys["unknown order"])
    assert len(unknown) == 1 and unknown[0].error.startswith("unknown order"), unknown
    read_model = shop.read_model()
    wait_for(
        lambda: read_model.orders.get_order(keys["unknown order"].decode()) is None,
        timeout=30,
        what="the unknown order gone from the read model once parked",
    )
    assert all(thread.is_alive() for thread in shop.threads), "a service stopped on a poison event"


def test_a_dead_letter_can_be_replayed_once_it_can_be_handled(shop: RunningShop) -> None:
    order_id = f"replay-{secrets.token_hex(4)}"
    produce_raw(shop.settings, str(Topic.ASSEMBLED), order_id.encode(), b'{"baking_time": "x"}')
    letter = wait_for(
        lambda: parked(read_dead_letters(shop.settings), order_id.encode()),
        timeout=60,
        what="the bad event in pizza-dlq",
    )[0]

    replayed = replay(shop.settings, letter.position)

    assert replayed.source_topic == str(Topic.ASSEMBLED)
    letters = wait_for(
        lambda: (
            (found := parked(read_dead_letters(shop.settings), order_id.encode()))
            and len(found) >= 2
            and found
        ),
        timeout=60,
        what="the replayed event, still bad, to be parked again",
    )
    assert len(letters) == 2, "replay produces the event again exactly once"
