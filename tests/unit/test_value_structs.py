"""Each topic's value decodes with a msgspec Struct, and takes exactly what its pydantic model
(what the published schemas are made from) takes: the two definitions cannot drift apart
(Hypothesis). Values are near misses: ints as bools, floats or text, strings just over their
bound, fields missing, null, of another type, extra fields, repeated keys, NaN, bad UTF-8."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pizzashop import contract, menu
from pizzashop.contract import VALUE_MODELS, ContractError, Topic

DECODERS: dict[Topic, msgspec.json.Decoder[Any]] = {
    Topic.ORDERED: contract._ORDERED,
    Topic.ASSEMBLED: contract._ASSEMBLED,
    Topic.STATUS: contract._STATUS,
    Topic.CANCEL: contract._CANCEL,
}
MANY = settings(max_examples=400, deadline=None)

# Any text, lone surrogates and control characters included; and text that UTF-8 can carry.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
UTF8_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=12)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(ANY_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
EDGE_INTS = [-1, 0, 1, 3599, 3600, 3601, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]
INTS = st.integers() | st.sampled_from(EDGE_INTS)
NOT_INTS = (
    st.booleans()
    | FLOATS
    | INTS.map(float)
    | INTS.map(str)
    | st.none()
    | ANY_TEXT
    | st.lists(INTS, max_size=2)
    | st.dictionaries(ANY_TEXT, INTS, max_size=2)
)


def text_of(lengths: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    """Text of so many characters, one, two or four bytes each in UTF-8."""
    return st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "🍕"]), lengths)


def text_within(limit: int, *shop_words: str) -> st.SearchStrategy[str]:
    return (
        UTF8_TEXT.filter(bool)
        | text_of(st.integers(limit - 2, limit))
        | st.sampled_from(shop_words)
    )


def either(first: st.SearchStrategy[Any], second: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Each half the time (`|` would draw each of `second`'s own alternatives as often)."""
    return st.booleans().flatmap(lambda pick: first if pick else second)


NOT_TEXT = st.none() | st.booleans() | INTS | FLOATS | st.lists(ANY_TEXT, max_size=2) | ANY_TEXT


def text_beyond(limit: int) -> st.SearchStrategy[Any]:
    return either(text_of(st.just(limit + 1)), NOT_TEXT)


# Each field: (values its model takes, near misses).
ORDER_FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "customer_id": (text_within(128, "c1"), either(text_beyond(128), st.just(""))),
    "name": (text_within(1024, "Italo", "Zoë", ""), text_beyond(1024)),
    "sauce": (text_within(64, *menu.SAUCES), text_beyond(64)),
    "cheese": (text_within(64, *menu.CHEESES), text_beyond(64)),
    "main_topping": (text_within(64, *menu.MAIN_TOPPINGS), text_beyond(64)),
    "extra_toppings": (
        either(
            st.lists(text_within(64, *menu.EXTRA_TOPPINGS), max_size=4),
            st.integers(62, 64).map(lambda n: ["Onion"] * n),
        ),
        either(
            st.lists(text_beyond(64), min_size=1, max_size=3),
            either(st.just(["Onion"] * 65), JSONISH),
        ),
    ),
}
TIMESTAMP = (INTS | st.none(), NOT_INTS)


@st.composite
def near_miss(
    draw: st.DrawFn, fields: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]
) -> Any:
    """A value whose fields are each mostly good, else a near miss or missing; with some extra
    fields; now and then not an object at all."""
    if draw(st.integers(0, 9)) == 9:
        return draw(JSONISH)
    value = {}
    for name, (good, near_misses) in fields.items():
        fate = draw(st.integers(0, 19))  # Hypothesis favours the bounds: 0 and 19
        if fate != 17:
            value[name] = draw(near_misses if fate >= 18 else good)
    extra = draw(st.dictionaries(ANY_TEXT.filter(lambda k: k not in fields), JSONISH, max_size=2))
    return {**extra, **value}


VALUES: dict[Topic, st.SearchStrategy[Any]] = {
    Topic.ORDERED: near_miss(
        {
            "status": (INTS, NOT_INTS),
            "timestamp": TIMESTAMP,
            "order": (near_miss(ORDER_FIELDS), JSONISH),
        }
    ),
    Topic.ASSEMBLED: near_miss({"baking_time": (st.integers(0, 3600) | INTS, NOT_INTS)}),
    Topic.STATUS: near_miss({"status": (INTS, NOT_INTS), "timestamp": TIMESTAMP}),
    Topic.CANCEL: near_miss({"timestamp": (INTS, NOT_INTS)}),
}


@st.composite
def json_text(draw: st.DrawFn, topic: Topic) -> bytes:
    """A value as a producer might write it: ASCII-escaped or not; lone surrogates as they
    come (an escape, or bytes that are not UTF-8)."""
    text = json.dumps(draw(VALUES[topic]), allow_nan=False, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


def struct_takes(topic: Topic, raw: bytes) -> dict[str, Any] | None:
    try:
        decoded = DECODERS[topic].decode(raw.decode())
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    as_builtins: dict[str, Any] = msgspec.to_builtins(decoded)
    return as_builtins


def model_takes(topic: Topic, raw: bytes) -> dict[str, Any] | None:
    try:
        return VALUE_MODELS[topic].model_validate_json(raw).model_dump()
    except ValidationError:
        return None


@pytest.mark.parametrize("topic", list(VALUE_MODELS))
@MANY
@given(data=st.data())
def test_each_struct_takes_exactly_what_its_model_takes(topic: Topic, data: st.DataObject) -> None:
    raw = data.draw(json_text(topic))
    assert struct_takes(topic, raw) == model_takes(topic, raw), raw


@st.composite
def odd_json_text(draw: st.DrawFn, topic: Topic) -> bytes:
    """JSON that msgspec alone parses differently: NaN or Infinity in an extra field, a key
    repeated (a near miss first, or last), bad UTF-8 in an extra field."""
    raw = draw(json_text(topic))
    if not raw.startswith(b"{") or raw == b"{}":
        return raw
    odd = draw(
        st.sampled_from([b'"pad": NaN', b'"pad": -Infinity', b'"pad": "\xff\xfe"'])
        | st.builds(
            lambda name, value: json.dumps({name: value})[1:-1].encode(),
            st.sampled_from(["status", "timestamp", "baking_time", "order"]),
            JSONISH,
        )
    )
    return b"{" + odd + b", " + raw[1:] if draw(st.booleans()) else raw[:-1] + b", " + odd + b"}"


@pytest.mark.parametrize("topic", list(VALUE_MODELS))
@MANY
@given(data=st.data())
def test_decode_takes_exactly_what_the_model_takes(topic: Topic, data: st.DataObject) -> None:
    raw = data.draw(odd_json_text(topic) | json_text(topic))
    taken_by_model = model_takes(topic, raw)
    taken_by_struct = struct_takes(topic, raw)
    if taken_by_struct is not None:
        assert taken_by_struct == taken_by_model, "msgspec takes what pydantic refuses"
    try:
        event = contract.decode(str(topic), b"k", raw, timestamp=1)
    except ContractError as e:
        assert taken_by_model is None or "unknown status" in str(e), (raw, str(e))
        return
    assert taken_by_model is not None, raw
    if topic is Topic.ORDERED:
        assert isinstance(event, contract.OrderPlaced)
        assert event.order.model_dump() == taken_by_model["order"]


@pytest.mark.parametrize(
    "value",
    [
        b'{"baking_time": 17, "courier": NaN}',
        b'{"baking_time": 17, "courier": -Infinity}',
        b'{"baking_time": "soon", "baking_time": 17}',
    ],
)
def test_json_msgspec_alone_refuses_decodes_as_pydantic_takes_it(value: bytes) -> None:
    assert struct_takes(Topic.ASSEMBLED, value) is None
    assert contract.decode("pizza-assembled", b"k", value) == contract.PizzaAssembled("k", 17)
