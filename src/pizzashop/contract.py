"""The wire contract: topic names, event shapes, status codes and texts, encode and decode.

Compatible with the seed's events: keys are order ids as UTF-8 text, values UTF-8 JSON.
Nothing else in the shop spells a topic name or a JSON field.
"""

from __future__ import annotations

import json
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, TypeAlias, TypeVar

import msgspec
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from pizzashop import menu


class Topic(StrEnum):
    ORDERED = "pizza-ordered"
    ASSEMBLED = "pizza-assembled"
    BAKED = "pizza-baked"
    STATUS = "pizza-status"
    CANCEL = "pizza-cancel"
    DEAD_LETTER = "pizza-dlq"


# The topics an order passes through, co-partitioned: the steps, the statuses, and the
# customer's cancel, which the front door produces to the order's partition number.
PIPELINE_TOPICS: tuple[Topic, ...] = (
    Topic.ORDERED,
    Topic.ASSEMBLED,
    Topic.BAKED,
    Topic.STATUS,
    Topic.CANCEL,
)

# The shop's services, the consumer group each forms and what each consumes. A service's
# instances share its group; a kitchen service keeps its state in its own changelog topic.
SERVICES: dict[str, tuple[Topic, ...]] = {
    "assemble": (Topic.ORDERED,),
    "bake": (Topic.ASSEMBLED, Topic.CANCEL),
    "delivery": (Topic.ORDERED, Topic.BAKED),
    "status": (Topic.ORDERED, Topic.STATUS),
}


def group_id(service: str) -> str:
    return f"pizza_{service}"


def state_topic(service: str) -> str:
    return f"pizza_{service}-state"


# Where an order's first event lands: librdkafka's default (CRC32) and the JVM clients'
# (murmur2: Kafka Streams, ksqlDB, Connect, the console producer) disagree on the partition
# of a key. The shop places orders where a JVM client would; every later event of an order
# then goes to the partition number its input came from, whoever produced the first one.
PARTITIONER = "murmur2_random"


class Status(IntEnum):
    RECEIVED = 100
    IN_OVEN = 200
    OUT_FOR_DELIVERY = 300
    DELIVERED = 400
    # Final, and not an error: the customer cancelled before the pizza left the oven.
    CANCELLED = 450
    # Errors are >= 500 (or negative): they are not steps on the way to the customer.
    INVALID_ORDER = 500
    STUCK = 510

    @property
    def text(self) -> str:
        return STATUS_TEXTS[self]

    @property
    def is_error(self) -> bool:
        return self >= 500 or self < 0

    @property
    def leaves_the_oven(self) -> bool:
        """A step of a pizza out of the oven: it is never one of a cancelled order."""
        return self in (Status.OUT_FOR_DELIVERY, Status.DELIVERED)

    @property
    def is_final(self) -> bool:
        return self in (Status.DELIVERED, Status.CANCELLED, Status.INVALID_ORDER)


STATUS_TEXTS: dict[Status, str] = {
    Status.RECEIVED: "Order received and being prepared",
    Status.IN_OVEN: "Your pizza is in the oven",
    Status.OUT_FOR_DELIVERY: "Your pizza is out for delivery",
    Status.DELIVERED: "Your pizza was delivered",
    Status.CANCELLED: "Your order was cancelled",
    Status.INVALID_ORDER: "We could not make your order: it is not on our menu",
    Status.STUCK: "Your order is taking longer than it should; we are on it",
}

# Who writes an order's records, as the contract has it: the front door (the web app or
# `pizzashop order`) places the order, each kitchen service writes its step and its status,
# the status service's watchdog the stuck mark, a service with state its changelog. A dead
# letter names the service that parked it in a header of its own (`DeadLetter.service`).
ORDERING = "ordering"
WRITER_OF_STEP: dict[Topic, str] = {
    Topic.ORDERED: ORDERING,
    Topic.ASSEMBLED: "assemble",
    Topic.BAKED: "bake",
    Topic.CANCEL: ORDERING,
}
WRITER_OF_STATUS: dict[int, str] = {  # by status code: a record may carry any number
    Status.RECEIVED: ORDERING,
    Status.IN_OVEN: "assemble",
    Status.INVALID_ORDER: "assemble",
    Status.OUT_FOR_DELIVERY: "bake",
    Status.CANCELLED: "bake",
    Status.DELIVERED: "delivery",
    Status.STUCK: "status",
}


def writer_of(topic: str, status: int | None = None) -> str:
    """The part of the shop that writes records of `topic` (of `status`, on `pizza-status`);
    "" when the contract does not say (an unknown status, a topic not of the shop)."""
    if topic == Topic.STATUS:
        return "" if status is None else WRITER_OF_STATUS.get(status, "")
    if topic in WRITER_OF_STEP:
        return WRITER_OF_STEP[Topic(topic)]
    return next((name for name in SERVICES if topic == state_topic(name)), "")


MAX_EVENT_BYTES = 64 * 1024
MAX_ORDER_ID_LENGTH = 64
# The key of every pipeline topic, as `_decode_key` checks it (and the schemas publish it).
OrderIdKey: TypeAlias = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ORDER_ID_LENGTH,
        description="the order id as UTF-8 text (not JSON): printable, no spaces around it",
    ),
]


_StructT = TypeVar("_StructT", bound=msgspec.Struct)


class ContractError(ValueError):
    """An event that does not follow the wire contract. It goes to the dead-letter topic."""


# --- the dead-letter topic ------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """An event a service gave up on, parked in `pizza-dlq` as it was read: its key and value,
    and in the record's headers where it came from, why, and who parked it. `parked_at` is
    where it is parked (partition, offset), once read back from there."""

    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    error: str
    service: str = ""
    parked_at: tuple[int, int] | None = None

    @property
    def position(self) -> str:
        """Where it is parked, as `pizzashop dlq list` shows it and `dlq replay` takes it."""
        partition, offset = self.parked_at or (-1, -1)
        return f"{partition}:{offset}"

    def headers(self) -> list[tuple[str, str]]:
        return [
            (DLQ_SOURCE_TOPIC, self.source_topic),
            (DLQ_SOURCE_PARTITION, str(self.source_partition)),
            (DLQ_SOURCE_OFFSET, str(self.source_offset)),
            (DLQ_ERROR, self.error),
            (DLQ_SERVICE, self.service),
        ]

    @classmethod
    def parked(
        cls,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        parked_at: tuple[int, int],
    ) -> DeadLetter:
        found = {k: (v or b"").decode("utf-8", "replace") for k, v in headers}
        return cls(
            found.get(DLQ_SOURCE_TOPIC, ""),
            int(found.get(DLQ_SOURCE_PARTITION, "-1")),
            int(found.get(DLQ_SOURCE_OFFSET, "-1")),
            key,
            value,
            found.get(DLQ_ERROR, ""),
            found.get(DLQ_SERVICE, ""),
            parked_at,
        )


DLQ_SOURCE_TOPIC, DLQ_SOURCE_PARTITION, DLQ_SOURCE_OFFSET = (
    "source_topic",
    "source_partition",
    "source_offset",
)
DLQ_ERROR, DLQ_SERVICE = "error", "service"


# --- the order -------------------------------------------------------------------------------

Ingredient = Annotated[StrictStr, Field(max_length=64)]


class Order(BaseModel):
    """What a customer ordered, as carried inside `pizza-ordered`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    customer_id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    name: Annotated[StrictStr, Field(max_length=1024)]
    sauce: Ingredient
    cheese: Ingredient
    main_topping: Ingredient
    extra_toppings: Annotated[list[Ingredient], Field(max_length=64)] = Field(default_factory=list)

    def ingredients(self) -> tuple[str, ...]:
        return (self.sauce, self.cheese, self.main_topping, *self.extra_toppings)


# Characters a name may not hold: control (Cc: NUL, newline, ESC), format (Cf: zero-width
# spaces, right-to-left overrides) and lone surrogates (Cs), which forge log lines, move
# terminals' cursors, hide or reorder text, or cannot be encoded at all.
UNFIT_IN_NAMES = frozenset({"Cc", "Cf", "Cs"})


def _name_problem(name: str) -> str | None:
    if any(unicodedata.category(c) in UNFIT_IN_NAMES for c in name):
        return "control characters, invisible formatting and lone surrogates are not allowed"
    if not any(c.isprintable() and not c.isspace() for c in name):
        return "a name is required (something visible)"
    if len(name) > menu.MAX_NAME_LENGTH:
        return f"at most {menu.MAX_NAME_LENGTH} characters"
    return None


def menu_errors(order: Order) -> dict[str, str]:
    """What is wrong with an order by the shop's rules, by field. Empty when it is fine."""
    errors: dict[str, str] = {}
    name_problem = _name_problem(order.name)
    if name_problem:
        errors["name"] = name_problem
    for field_name, choices in (
        ("sauce", menu.SAUCES),
        ("cheese", menu.CHEESES),
        ("main_topping", menu.MAIN_TOPPINGS),
    ):
        value = getattr(order, field_name)
        if value not in choices:
            errors[field_name] = f"{value!r} is not on the menu ({', '.join(choices)})"
    extras = order.extra_toppings
    unknown = [x for x in extras if x not in menu.EXTRA_TOPPINGS]
    if len(extras) > menu.MAX_EXTRA_TOPPINGS:
        errors["extra_toppings"] = f"at most {menu.MAX_EXTRA_TOPPINGS} extra toppings"
    elif unknown:
        errors["extra_toppings"] = f"not on the menu: {', '.join(map(repr, unknown))}"
    elif len(set(extras)) != len(extras):
        errors["extra_toppings"] = "each extra topping at most once"
    return errors


def new_order_id() -> str:
    """An unguessable order id (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def now_ms() -> int:
    return int(time.time() * 1000)


def clock(timestamp_ms: int | None, with_date: bool = False, with_ms: bool = False) -> str:
    """A timestamp of the wire (ms since the epoch) as local time, for people to read."""
    if timestamp_ms is None:
        return "--:--:--"
    shape = "%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S"
    shown = datetime.fromtimestamp(timestamp_ms / 1000).strftime(shape)
    return f"{shown}.{timestamp_ms % 1000:03d}" if with_ms else shown


# --- the events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    order: Order
    timestamp: int


@dataclass(frozen=True)
class PizzaAssembled:
    order_id: str
    baking_time: int


@dataclass(frozen=True)
class PizzaBaked:
    order_id: str


@dataclass(frozen=True)
class CancelRequested:
    """The customer asks to cancel an order; bake decides whether it is still possible."""

    order_id: str
    timestamp: int


@dataclass(frozen=True)
class StatusChanged:
    order_id: str
    status: Status
    timestamp: int | None = None  # None: stamped when it is produced


Event: TypeAlias = OrderPlaced | PizzaAssembled | PizzaBaked | StatusChanged | CancelRequested

TOPIC_OF: dict[type, Topic] = {
    OrderPlaced: Topic.ORDERED,
    PizzaAssembled: Topic.ASSEMBLED,
    PizzaBaked: Topic.BAKED,
    StatusChanged: Topic.STATUS,
    CancelRequested: Topic.CANCEL,
}


class _OrderedValue(BaseModel):
    """An order placed: the value of `pizza-ordered` (`timestamp` in ms; `status` is 100)."""

    model_config = ConfigDict(extra="ignore")
    status: StrictInt = Status.RECEIVED
    timestamp: StrictInt | None = None
    order: Order


class _AssembledValue(BaseModel):
    """A pizza assembled: the value of `pizza-assembled`, its baking time in seconds."""

    model_config = ConfigDict(extra="ignore")
    baking_time: Annotated[StrictInt, Field(ge=0, le=3600)]


class _StatusValue(BaseModel):
    """An order's new status: the value of `pizza-status` (`timestamp` in ms)."""

    model_config = ConfigDict(extra="ignore")
    # Any integer parses; `decode` then refuses a code that is not a Status, naming it. The
    # published schema lists the codes, for producers that validate before they write.
    status: Annotated[StrictInt, Field(json_schema_extra={"enum": [int(s) for s in Status]})]
    timestamp: StrictInt | None = None


class _CancelValue(BaseModel):
    """A customer's cancel: the value of `pizza-cancel` (`timestamp` in ms, when it was asked)."""

    model_config = ConfigDict(extra="ignore")
    timestamp: StrictInt


# Each topic's value as a model, where it is JSON: the published schemas are made from these.
VALUE_MODELS: dict[Topic, type[BaseModel]] = {
    Topic.ORDERED: _OrderedValue,
    Topic.ASSEMBLED: _AssembledValue,
    Topic.STATUS: _StatusValue,
    Topic.CANCEL: _CancelValue,
}


# The same values as msgspec Structs, which decode in a fifth of the time: every service
# decodes every event it consumes. Each takes exactly what its model above takes (strict
# types, the same bounds, extra fields ignored), as tests/unit/test_value_structs.py checks.
_StructIngredient = Annotated[str, msgspec.Meta(max_length=64)]


class _OrderStruct(msgspec.Struct, kw_only=True):
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    name: Annotated[str, msgspec.Meta(max_length=1024)]
    sauce: _StructIngredient
    cheese: _StructIngredient
    main_topping: _StructIngredient
    extra_toppings: Annotated[list[_StructIngredient], msgspec.Meta(max_length=64)] = []


class _OrderedStruct(msgspec.Struct, kw_only=True):
    status: int = Status.RECEIVED
    timestamp: int | None = None
    order: _OrderStruct


class _AssembledStruct(msgspec.Struct):
    baking_time: Annotated[int, msgspec.Meta(ge=0, le=3600)]


class _StatusStruct(msgspec.Struct):
    status: int
    timestamp: int | None = None


class _CancelStruct(msgspec.Struct):
    timestamp: int


_ORDERED = msgspec.json.Decoder(_OrderedStruct)
_ASSEMBLED = msgspec.json.Decoder(_AssembledStruct)
_STATUS = msgspec.json.Decoder(_StatusStruct)
_CANCEL = msgspec.json.Decoder(_CancelStruct)

EMPTY_VALUE = "empty: no value, or zero bytes; a consumer ignores whatever is there"
PARKED_VALUE = (
    "the parked record's value as it was read, any bytes (JSON or not); where it came from "
    f"and why are in the record's headers: {DLQ_SOURCE_TOPIC}, {DLQ_SOURCE_PARTITION}, "
    f"{DLQ_SOURCE_OFFSET}, {DLQ_ERROR}, {DLQ_SERVICE}"
)
PARKED_KEY = "the parked record's key as it was read, any bytes, or none"


@dataclass(frozen=True)
class Record:
    """An event as Kafka carries it."""

    topic: Topic
    key: bytes
    value: bytes


def encode(event: Event) -> Record:
    key = event.order_id.encode()
    match event:
        case OrderPlaced(order=order, timestamp=ts):
            value: dict[str, Any] | None = {
                "status": int(Status.RECEIVED),
                "timestamp": ts,
                "order": order.model_dump(),
            }
        case PizzaAssembled(baking_time=baking_time):
            value = {"baking_time": baking_time}
        case PizzaBaked():
            value = None
        case StatusChanged(status=status, timestamp=ts):
            value = {"status": int(status), "timestamp": now_ms() if ts is None else ts}
        case CancelRequested(timestamp=ts):
            value = {"timestamp": ts}
    # json, not msgspec, which cannot write the spaces after ':' and ',': the records (and
    # the seed's log lines showing them) stay byte for byte what they always were.
    raw = b"" if value is None else json.dumps(value).encode()
    return Record(TOPIC_OF[type(event)], key, raw)


def decode(
    topic: str, key: bytes | None, value: bytes | None, timestamp: int | None = None
) -> Event:
    """The event a Kafka record carries, or ContractError saying why it is not one.

    `timestamp` (ms) stands in when the value has none, as the seed's events may not.
    """
    order_id = _decode_key(key)
    if value is not None and len(value) > MAX_EVENT_BYTES:
        raise ContractError(f"value of {len(value)} bytes exceeds the limit of {MAX_EVENT_BYTES}")
    fallback_ts = timestamp if timestamp is not None and timestamp > 0 else now_ms()
    match topic:
        case Topic.ORDERED:
            ordered = _parse(_ORDERED, _OrderedValue, value)
            return OrderPlaced(order_id, _order_of(ordered.order), ordered.timestamp or fallback_ts)
        case Topic.ASSEMBLED:
            return PizzaAssembled(order_id, _parse(_ASSEMBLED, _AssembledValue, value).baking_time)
        case Topic.BAKED:
            return PizzaBaked(order_id)
        case Topic.STATUS:
            changed = _parse(_STATUS, _StatusValue, value)
            try:
                status = Status(changed.status)
            except ValueError:
                raise ContractError(f"unknown status {changed.status}") from None
            return StatusChanged(order_id, status, changed.timestamp or fallback_ts)
        case Topic.CANCEL:
            return CancelRequested(order_id, _parse(_CANCEL, _CancelValue, value).timestamp)
    raise ContractError(f"topic {topic!r} is not part of the contract")


def _decode_key(key: bytes | None) -> str:
    if not key:
        raise ContractError("missing key (the order id)")
    try:
        order_id = key.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError("key is not UTF-8") from None
    if (
        len(order_id) > MAX_ORDER_ID_LENGTH
        or not order_id.isprintable()
        or order_id.strip() != order_id
    ):
        raise ContractError(f"key {order_id[:80]!r} is not an order id")
    return order_id


def _parse(
    decoder: msgspec.json.Decoder[_StructT], model: type[BaseModel], value: bytes | None
) -> _StructT:
    if not value:
        raise ContractError("empty value")
    try:
        # As text: msgspec does not check the UTF-8 of a field it skips, and pydantic does.
        return decoder.decode(value.decode())
    except (msgspec.DecodeError, UnicodeDecodeError):
        # The model says why, in the words the web app uses too. It also takes the little
        # that msgspec alone refuses: NaN in an ignored field, a key repeated with a bad value
        # before its last (good) one.
        # Through JSON again rather than msgspec.convert, so the decoder's own type is the one
        # returned (a Decoder's `type` is typed too loosely for convert to keep it).
        return decoder.decode(msgspec.json.encode(_validated(model, value).model_dump()))


def _order_of(decoded: _OrderStruct) -> Order:
    # Validated already, by the same rules. Validating again in pydantic-core still costs
    # half of model_construct, which is Python; the validator itself, a third less than
    # model_validate.
    order: Order = Order.__pydantic_validator__.validate_python(msgspec.structs.asdict(decoded))
    return order


def _validated(model: type[BaseModel], value: bytes) -> BaseModel:
    try:
        return model.model_validate_json(value)
    except ValidationError as e:
        if e.errors()[0]["type"] == "json_invalid":
            raise ContractError(
                f"value is not UTF-8 JSON: {e.errors()[0]['ctx']['error']}"
            ) from None
        raise ContractError(_describe(e)) from None


def _describe(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "value"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)
