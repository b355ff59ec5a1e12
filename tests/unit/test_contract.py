"""The wire contract: the seed's events decode, our events encode to the seed's shapes,
and everything else is refused with a reason."""

from __future__ import annotations

import json

import pytest

from pizzashop import contract, menu
from pizzashop.contract import (
    ContractError,
    OrderPlaced,
    PizzaAssembled,
    PizzaBaked,
    Status,
    StatusChanged,
    Topic,
    decode,
    encode,
)
from pizzashop.menu import menu_errors
from tests.unit.shop_events import an_order

SEED_ORDERED = (
    b'{"status": 100, "timestamp": 1676235639159, "order": {"extra_toppings": ["Mushroom"], '
    b'"customer_id": "d94a6c43d9f487c1bef659f05c002213", "name": "Italo", "sauce": "Tomato", '
    b'"cheese": "Mozzarella", "main_topping": "Pepperoni"}}'
)


def test_the_seeds_order_event_decodes() -> None:
    event = decode("pizza-ordered", b"3c91b", SEED_ORDERED)
    assert event == OrderPlaced(
        "3c91b", an_order(customer_id="d94a6c43d9f487c1bef659f05c002213"), 1676235639159
    )


def test_the_seeds_other_events_decode() -> None:
    assert decode("pizza-assembled", b"3c91b", b'{"baking_time": 17}') == PizzaAssembled(
        "3c91b", 17
    )
    assert decode("pizza-baked", b"3c91b", b"") == PizzaBaked("3c91b")
    assert decode("pizza-baked", b"3c91b", None) == PizzaBaked("3c91b")
    changed = decode("pizza-status", b"3c91b", b'{"status": 200}', timestamp=1700000000000)
    assert changed == StatusChanged("3c91b", Status.IN_OVEN, 1700000000000)


def test_extra_fields_are_tolerated() -> None:
    value = b'{"status": 300, "timestamp": 5, "courier": "Ada"}'
    assert decode("pizza-status", b"k", value) == StatusChanged("k", Status.OUT_FOR_DELIVERY, 5)


def test_encoded_events_have_exactly_the_seeds_shapes() -> None:
    ordered = encode(OrderPlaced("3c91b", an_order(), 1676235639159))
    assert ordered.topic is Topic.ORDERED and ordered.key == b"3c91b"
    assert json.loads(ordered.value) == {
        "status": 100,
        "timestamp": 1676235639159,
        "order": {
            "extra_toppings": ["Mushroom"],
            "customer_id": "c1",
            "name": "Italo",
            "sauce": "Tomato",
            "cheese": "Mozzarella",
            "main_topping": "Pepperoni",
        },
    }
    assert json.loads(encode(PizzaAssembled("3c91b", 17)).value) == {"baking_time": 17}
    assert encode(PizzaBaked("3c91b")).value == b""
    status = json.loads(encode(StatusChanged("3c91b", Status.DELIVERED)).value)
    assert status["status"] == 400 and isinstance(status["timestamp"], int)


@pytest.mark.parametrize(
    "event",
    [
        OrderPlaced("a", an_order(extra_toppings=[]), 1),
        PizzaAssembled("b", 10),
        PizzaBaked("c"),
        StatusChanged("d", Status.STUCK, 7),
    ],
)
def test_every_event_survives_a_round_trip(event: contract.Event) -> None:
    record = encode(event)
    assert decode(record.topic, record.key, record.value) == event


@pytest.mark.parametrize(
    "topic, key, value, reason",
    [
        ("pizza-ordered", b"k", b"\xff\xfe not json", "not UTF-8 JSON"),
        ("pizza-ordered", b"k", b"{not json", "not UTF-8 JSON"),
        ("pizza-ordered", b"k", b'{"status": 100}', "order"),
        (
            "pizza-ordered",
            b"k",
            b'{"order": {"name": 5, "customer_id": "c", "sauce": "Tomato", '
            b'"cheese": "Gouda", "main_topping": "Pork"}}',
            "order.name",
        ),
        ("pizza-ordered", b"k", b"[1, 2]", "value"),
        ("pizza-assembled", b"k", b'{"baking_time": "17"}', "baking_time"),
        ("pizza-assembled", b"k", b'{"baking_time": -1}', "baking_time"),
        ("pizza-status", b"k", b'{"status": 999}', "unknown status 999"),
        ("pizza-status", b"k", b'{"status": "200"}', "status"),
        ("pizza-status", b"k", b"", "empty value"),
        ("pizza-status", None, b'{"status": 200}', "missing key"),
        ("pizza-status", b"\xff", b'{"status": 200}', "not UTF-8"),
        (
            "pizza-status",
            b"k",
            b'{"status": 200, "pad": "' + b"x" * 70_000 + b'"}',
            "exceeds the limit",
        ),
        ("some-other-topic", b"k", b"{}", "not part of the contract"),
    ],
)
def test_bad_events_are_refused_with_a_reason(
    topic: str, key: bytes | None, value: bytes, reason: str
) -> None:
    with pytest.raises(ContractError, match=reason.replace(".", r"\.")):
        decode(topic, key, value)


def test_a_missing_timestamp_takes_the_records_timestamp() -> None:
    event = decode(
        "pizza-ordered",
        b"k",
        SEED_ORDERED.replace(b'"timestamp": 1676235639159, ', b""),
        timestamp=42,
    )
    assert isinstance(event, OrderPlaced) and event.timestamp == 42


def test_menu_errors_name_each_field() -> None:
    assert menu_errors(an_order()) == {}
    errors = menu_errors(
        an_order(
            name=" ",
            sauce="Ketchup",
            cheese="Brie",
            main_topping="Tofu",
            extra_toppings=["Mushroom", "Glitter"],
        )
    )
    assert set(errors) == {"name", "sauce", "cheese", "main_topping", "extra_toppings"}
    assert "Glitter" in errors["extra_toppings"]


def test_too_many_or_repeated_extras_are_refused() -> None:
    everything = list(menu.EXTRA_TOPPINGS)
    assert menu_errors(an_order(extra_toppings=everything)) == {}
    assert (
        "at most" in menu_errors(an_order(extra_toppings=everything + ["Onion"]))["extra_toppings"]
    )
    assert "once" in menu_errors(an_order(extra_toppings=["Onion", "Onion"]))["extra_toppings"]


def test_over_long_names_are_refused() -> None:
    assert "at most" in menu_errors(an_order(name="x" * 41))["name"]


def test_order_ids_are_unguessable() -> None:
    ids = {contract.new_order_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) >= 20 for i in ids)


def test_statuses_have_the_seeds_texts() -> None:
    assert Status.RECEIVED.text == "Order received and being prepared"
    assert Status.IN_OVEN.text == "Your pizza is in the oven"
    assert Status.OUT_FOR_DELIVERY.text == "Your pizza is out for delivery"
    assert Status.DELIVERED.text == "Your pizza was delivered"
    assert all(s.text for s in Status)
    assert [s for s in Status if s.is_error] == [
        Status.INVALID_ORDER,
        Status.STUCK,
        Status.SOLD_OUT,
    ]
