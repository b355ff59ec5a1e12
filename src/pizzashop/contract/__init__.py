"""The wire contract: topic names, event shapes, status codes and texts, encode and decode.

Compatible with the seed's events: keys are order ids as UTF-8 text, values UTF-8 JSON,
framed with a schema id when a Schema Registry is in use (`framing`). Nothing else in the
shop spells a topic name or a JSON field. `topics` names the topics and who reads and sends
each; each JSON value is one model here; `decoders` makes its fast decoder from it,
`deadletter` holds the `pizza-dlq` record.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, TypeAlias

import msgspec
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from pizzashop.contract import framing, pantry

# Re-exported: the contract is read from one place, `pizzashop.contract`.
from pizzashop.contract.pantry import EndReservation as EndReservation
from pizzashop.contract.pantry import PantryEvent, PantryValue, ReservedValue, StockValue
from pizzashop.contract.pantry import ReservationDecided as ReservationDecided
from pizzashop.contract.pantry import ReservationEnded as ReservationEnded
from pizzashop.contract.pantry import ReserveIngredients as ReserveIngredients
from pizzashop.contract.pantry import Restock as Restock
from pizzashop.contract.pantry import StockLevel as StockLevel
from pizzashop.contract.parsing import ContractError as ContractError
from pizzashop.contract.parsing import decoder, parse
from pizzashop.contract.topics import COMMAND_SIDE as COMMAND_SIDE
from pizzashop.contract.topics import ONE_PARTITION_TOPICS as ONE_PARTITION_TOPICS
from pizzashop.contract.topics import OPERATOR as OPERATOR
from pizzashop.contract.topics import PARTITIONER as PARTITIONER
from pizzashop.contract.topics import PIPELINE_TOPICS as PIPELINE_TOPICS
from pizzashop.contract.topics import PRODUCES as PRODUCES
from pizzashop.contract.topics import SERVICES as SERVICES
from pizzashop.contract.topics import Topic as Topic
from pizzashop.contract.topics import group_id as group_id
from pizzashop.contract.topics import state_topic as state_topic


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
    # Final: the pantry was short of one of the order's ingredients (pizza-reserved names it).
    SOLD_OUT = 520

    @property
    def text(self) -> str:
        return STATUS_TEXTS[self]

    @property
    def is_error(self) -> bool:
        return self >= 500 or self < 0

    @property
    def is_assembled(self) -> bool:
        """A step of an assembled pizza: too late to cancel, never one of a cancelled order."""
        return self in (Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED)

    @property
    def is_final(self) -> bool:
        return self in (Status.DELIVERED, Status.CANCELLED, Status.INVALID_ORDER, Status.SOLD_OUT)


STATUS_TEXTS: dict[Status, str] = {
    Status.RECEIVED: "Order received and being prepared",
    Status.IN_OVEN: "Your pizza is in the oven",
    Status.OUT_FOR_DELIVERY: "Your pizza is out for delivery",
    Status.DELIVERED: "Your pizza was delivered",
    Status.CANCELLED: "Your order was cancelled",
    Status.INVALID_ORDER: "We could not make your order: it is not on our menu",
    Status.STUCK: "Your order is taking longer than it should; we are on it",
    Status.SOLD_OUT: "We could not make your order: we ran out of one of its ingredients",
}

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


def new_order_id() -> str:
    """An unguessable order id (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def now_ms() -> int:
    return int(time.time() * 1000)


# --- the events ------------------------------------------------------------------------------
# What the services make and match: an order id (the record's key) and what its value says,
# made whole (a status, a timestamp). The value as it is written and read, its field names,
# types and bounds, is the topic's model below, and only there.


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


Event: TypeAlias = (
    OrderPlaced | PizzaAssembled | PizzaBaked | StatusChanged | CancelRequested | PantryEvent
)

TOPIC_OF: dict[type, Topic] = {
    OrderPlaced: Topic.ORDERED,
    PizzaAssembled: Topic.ASSEMBLED,
    PizzaBaked: Topic.BAKED,
    StatusChanged: Topic.STATUS,
    CancelRequested: Topic.CANCEL,
    ReserveIngredients: Topic.PANTRY,
    EndReservation: Topic.PANTRY,
    Restock: Topic.PANTRY,
    ReservationDecided: Topic.RESERVED,
    ReservationEnded: Topic.RESERVED,
    StockLevel: Topic.STOCK,
}


class OrderedValue(BaseModel):
    """An order placed: the value of `pizza-ordered` (`timestamp` in ms; `status` is 100)."""

    model_config = ConfigDict(extra="ignore")
    status: StrictInt = Status.RECEIVED
    timestamp: StrictInt | None = None
    order: Order


class AssembledValue(BaseModel):
    """A pizza assembled: the value of `pizza-assembled`, its baking time in seconds."""

    model_config = ConfigDict(extra="ignore")
    baking_time: Annotated[StrictInt, Field(ge=0, le=3600)]


class StatusValue(BaseModel):
    """An order's new status: the value of `pizza-status` (`timestamp` in ms)."""

    model_config = ConfigDict(extra="ignore")
    # Any integer parses; `decode` then refuses a code that is not a Status, naming it. The
    # published schema lists the codes, for producers that validate before they write.
    status: Annotated[StrictInt, Field(json_schema_extra={"enum": [int(s) for s in Status]})]
    timestamp: StrictInt | None = None


class CancelValue(BaseModel):
    """A customer's cancel: the value of `pizza-cancel` (`timestamp` in ms, when it was asked)."""

    model_config = ConfigDict(extra="ignore")
    timestamp: StrictInt


# Each topic's value as a model, where it is JSON: the one definition of each value, which
# encodes it, validates it, explains why one is refused and makes its published schema.
VALUE_MODELS: dict[Topic, type[BaseModel]] = {
    Topic.ORDERED: OrderedValue,
    Topic.ASSEMBLED: AssembledValue,
    Topic.STATUS: StatusValue,
    Topic.CANCEL: CancelValue,
    Topic.PANTRY: PantryValue,
    Topic.RESERVED: ReservedValue,
    Topic.STOCK: StockValue,
}
# Values written without their absent fields: an ask holds only what its kind needs.
SPARSE_VALUES: tuple[type[BaseModel], ...] = (PantryValue, ReservedValue)
# And each decoded fast, by msgspec, into a Struct made from its model (parsing.py).
DECODERS: dict[type[BaseModel], msgspec.json.Decoder[Any]] = {
    model: decoder(model) for model in VALUE_MODELS.values()
}


@dataclass(frozen=True)
class Record:
    """An event as Kafka carries it."""

    topic: Topic
    key: bytes
    value: bytes


def encode(event: Event) -> Record:
    value = _value_of(event)
    # json, not msgspec, which cannot write the spaces after ':' and ',': the records (and
    # the seed's log lines showing them) stay byte for byte what they always were.
    topic = TOPIC_OF[type(event)]
    if value is None:
        raw = b""
    else:
        dumped = value.model_dump(exclude_none=isinstance(value, SPARSE_VALUES))
        raw = framing.framed(topic, json.dumps(dumped).encode())
    return Record(topic, event.order_id.encode(), raw)


def routed(event: Event, input_partition: int) -> tuple[Event, int]:
    """The event as it goes out, and the partition it goes to: the one partition of the
    pantry's own topics, the order's own for the pantry's answers, and otherwise the partition
    number of the input it came from. An ask for an order's ingredients carries that
    partition, for the answer to find its order."""
    if isinstance(event, ReserveIngredients) and event.partition < 0:
        event = ReserveIngredients(event.order_id, event.ingredients, input_partition)
    if TOPIC_OF[type(event)] in ONE_PARTITION_TOPICS:
        return event, 0
    if isinstance(event, ReservationDecided | ReservationEnded) and event.partition >= 0:
        return event, event.partition
    return event, input_partition


def _value_of(event: Event) -> BaseModel | None:
    # Validated as it is built (and as quick as building it unvalidated): the shop never
    # writes a value its contract would refuse.
    match event:
        case OrderPlaced(order=order, timestamp=ts):
            return OrderedValue(timestamp=ts, order=order)
        case PizzaAssembled(baking_time=baking_time):
            return AssembledValue(baking_time=baking_time)
        case PizzaBaked():
            return None
        case StatusChanged(status=status, timestamp=ts):
            return StatusValue(status=int(status), timestamp=now_ms() if ts is None else ts)
        case CancelRequested(timestamp=ts):
            return CancelValue(timestamp=ts)
        case _:
            return pantry.value_of(event)


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
    if value and framing.is_framed(value):
        value = _unframed(topic, value)
    match topic:
        case Topic.ORDERED:
            ordered = parse(OrderedValue, value)
            return OrderPlaced(order_id, _order_of(ordered.order), ordered.timestamp or fallback_ts)
        case Topic.ASSEMBLED:
            return PizzaAssembled(order_id, parse(AssembledValue, value).baking_time)
        case Topic.BAKED:
            return PizzaBaked(order_id)
        case Topic.STATUS:
            changed = parse(StatusValue, value)
            try:
                status = Status(changed.status)
            except ValueError:
                raise ContractError(f"unknown status {changed.status}") from None
            return StatusChanged(order_id, status, changed.timestamp or fallback_ts)
        case Topic.CANCEL:
            return CancelRequested(order_id, parse(CancelValue, value).timestamp)
        case Topic.PANTRY | Topic.RESERVED | Topic.STOCK:
            return _pantry_event(topic, order_id, value)
    raise ContractError(f"topic {topic!r} is not part of the contract")


def _pantry_event(topic: str, key: str, value: bytes | None) -> PantryEvent:
    """`key` is an order id, a restock's id or an ingredient, by the topic and the ask."""
    if topic == Topic.STOCK:
        return StockLevel(key, parse(StockValue, value).left)
    try:
        if topic == Topic.RESERVED:
            return pantry.reserved_of(key, parse(ReservedValue, value))
        return pantry.ask_of(key, parse(PantryValue, value))
    except ValueError as e:
        raise ContractError(str(e)) from None


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


def _unframed(topic: str, value: bytes) -> bytes:
    """The JSON of a framed value, once the registry in use has checked what it names."""
    schema_id = framing.schema_id_of(value)
    if schema_id is None:
        raise ContractError(f"value of {len(value)} bytes starts with a 0 byte but names no schema")
    in_use = framing.in_use()
    if in_use is not None:
        in_use.check(topic, schema_id, value[framing.FRAME_BYTES :])
    return value[framing.FRAME_BYTES :]


def _order_of(decoded: msgspec.Struct) -> Order:
    # Validated already, by the same rules. Validating again in pydantic-core still costs
    # half of model_construct, which is Python; the validator itself, a third less than
    # model_validate.
    order: Order = Order.__pydantic_validator__.validate_python(msgspec.structs.asdict(decoded))
    return order
