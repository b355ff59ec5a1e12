"""Each topic's value is one pydantic model, and decodes fast through a msgspec Struct made
from it. Both take the same values: strict ints and strings, the bounds inclusive, extra
fields ignored, optional fields defaulted; whatever one refuses, the other does too, and the
model names the field that is wrong."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import msgspec
import pytest
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from pizzashop import contract
from pizzashop.contract import DECODERS, VALUE_MODELS, ContractError, Topic
from pizzashop.contract.decoders import decoder_of

ORDER = {"customer_id": "c1", "name": "Italo", "sauce": "Tomato", "cheese": "Mozzarella",
         "main_topping": "Pepperoni", "extra_toppings": ["Mushroom"]}  # fmt: skip
EXTRA = {"courier": "Ada", "pad": [1, {"x": None}]}


def ordered(**order: Any) -> dict[str, Any]:
    return {"status": 100, "timestamp": 5, "order": {**ORDER, **order}}


TAKEN: list[tuple[Topic, dict[str, Any]]] = [
    (Topic.ORDERED, ordered()),
    (Topic.ORDERED, {"order": ORDER}),  # no status, no timestamp
    (Topic.ORDERED, {**ordered(), **EXTRA, "timestamp": None}),
    (Topic.ORDERED, ordered(extra_toppings=[])),
    (Topic.ORDERED, ordered(extra_toppings=["Onion"] * 64)),  # the menu says 6: not the wire
    (Topic.ORDERED, ordered(customer_id="c" * 128, name="é" * 1024, sauce="🍕" * 64)),
    (Topic.ORDERED, ordered(name="")),  # the menu's rules, not the wire's, want a name
    (Topic.ORDERED, {**ordered(), "status": -7}),
    (Topic.ASSEMBLED, {"baking_time": 0}),
    (Topic.ASSEMBLED, {"baking_time": 3600, **EXTRA}),
    (Topic.STATUS, {"status": 200}),
    (Topic.STATUS, {"status": 400, "timestamp": 2**63 - 1, **EXTRA}),
    (Topic.CANCEL, {"timestamp": 1}),
]

# Each near miss, and the field the reason names.
REFUSED: list[tuple[Topic, Any, str]] = [
    (Topic.ORDERED, {"status": 100}, "order"),
    (Topic.ORDERED, {**ordered(), "status": "100"}, "status"),
    (Topic.ORDERED, {**ordered(), "timestamp": 5.0}, "timestamp"),
    (Topic.ORDERED, ordered(customer_id=""), "order.customer_id"),
    (Topic.ORDERED, ordered(customer_id="c" * 129), "order.customer_id"),
    (Topic.ORDERED, ordered(name="x" * 1025), "order.name"),
    (Topic.ORDERED, ordered(name=5), "order.name"),
    (Topic.ORDERED, ordered(sauce="🍕" * 65), "order.sauce"),
    (Topic.ORDERED, ordered(cheese=None), "order.cheese"),
    (Topic.ORDERED, ordered(extra_toppings=["Onion"] * 65), "order.extra_toppings"),
    (Topic.ORDERED, ordered(extra_toppings=["x" * 65]), "order.extra_toppings.0"),
    (Topic.ORDERED, ordered(extra_toppings="Onion"), "order.extra_toppings"),
    (Topic.ORDERED, {"order": [ORDER]}, "order"),
    (Topic.ORDERED, [ordered()], "value"),
    (Topic.ASSEMBLED, {"baking_time": -1}, "baking_time"),
    (Topic.ASSEMBLED, {"baking_time": 3601}, "baking_time"),
    (Topic.ASSEMBLED, {"baking_time": True}, "baking_time"),
    (Topic.ASSEMBLED, {"baking_time": 17.0}, "baking_time"),
    (Topic.ASSEMBLED, {"baking_time": "17"}, "baking_time"),
    (Topic.ASSEMBLED, {}, "baking_time"),
    (Topic.STATUS, {"status": None}, "status"),
    (Topic.STATUS, {"status": 200, "timestamp": "5"}, "timestamp"),
    (Topic.CANCEL, {"timestamp": None}, "timestamp"),
    (Topic.CANCEL, {"timestamp": False}, "timestamp"),
]


def fast_takes(topic: Topic, value: Any) -> bool:
    try:
        DECODERS[VALUE_MODELS[topic]].decode(json.dumps(value))
    except msgspec.ValidationError:
        return False
    return True


def model_takes(topic: Topic, value: Any) -> bool:
    try:
        VALUE_MODELS[topic].model_validate_json(json.dumps(value))
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("topic", "value"), TAKEN)
def test_a_good_value_is_taken_by_its_model_and_its_decoder(topic: Topic, value: Any) -> None:
    assert model_takes(topic, value) and fast_takes(topic, value)
    contract.decode(topic, b"k", json.dumps(value).encode(), timestamp=1)


@pytest.mark.parametrize(("topic", "value", "field"), REFUSED)
def test_a_near_miss_is_refused_naming_its_field(topic: Topic, value: Any, field: str) -> None:
    assert not model_takes(topic, value) and not fast_takes(topic, value)
    with pytest.raises(ContractError, match="^" + re.escape(f"{field}: ")):
        contract.decode(topic, b"k", json.dumps(value).encode())


def test_the_fast_path_decodes_what_the_model_would() -> None:
    raw = json.dumps({**ordered(extra_toppings=[]), **EXTRA}).encode()
    event = contract.decode(Topic.ORDERED, b"k", raw)
    model = contract.OrderedValue.model_validate_json(raw)
    assert isinstance(event, contract.OrderPlaced)
    assert event.order == model.order and event.timestamp == model.timestamp


@pytest.mark.parametrize(
    "value",
    [
        b'{"baking_time": 17, "courier": NaN}',
        b'{"baking_time": 17, "courier": -Infinity}',
        b'{"baking_time": "soon", "baking_time": 17}',
    ],
)
def test_json_msgspec_alone_refuses_decodes_as_the_model_takes_it(value: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        DECODERS[contract.AssembledValue].decode(value)
    assert contract.decode("pizza-assembled", b"k", value) == contract.PizzaAssembled("k", 17)


def test_a_field_msgspec_would_decode_otherwise_cannot_be_made_fast() -> None:
    class Lax(BaseModel):
        model_config = ConfigDict(extra="ignore")
        baking_time: int  # pydantic takes "17" here, msgspec would not

    class Patterned(BaseModel):
        model_config = ConfigDict(extra="ignore")
        code: Annotated[StrictInt, Field(multiple_of=5)]

    for model in (Lax, Patterned):
        with pytest.raises(TypeError):
            decoder_of(model)
