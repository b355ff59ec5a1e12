"""The pantry's part of the wire: what assemble and the operator ask of it on `pizza-pantry`,
its answer to each order on `pizza-reserved`, and each ingredient's level on `pizza-stock`.

`pizza-pantry` has one partition: every ask, whichever order or ingredient it is about, is
decided by the one pantry instance that owns it, in the order asked. An order's ask carries
the partition its order lives on, where the pantry's answer goes (`pizza-reserved` is
co-partitioned with the pipeline). `pizza-stock` is compacted, one record per ingredient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

Ingredient = Annotated[StrictStr, Field(min_length=1, max_length=64)]
MAX_RESTOCK = 1_000_000
USED, RELEASED = "used", "released"
ENDINGS = (USED, RELEASED)


class Ask:
    """What an ask on `pizza-pantry` asks for."""

    RESERVE = "reserve"  # every ingredient of an order, or none of them
    USE = "use"  # the order was assembled: taken, though the shop's assembly is the use itself
    RELEASE = "release"  # the order was cancelled before assembly: its ingredients go back
    RESTOCK = "restock"  # more of one ingredient

    ALL = (RESERVE, USE, RELEASE, RESTOCK)


# --- the events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReserveIngredients:
    """assemble asks for an order's ingredients, all or none; the answer goes to `partition`."""

    order_id: str
    ingredients: tuple[str, ...]
    partition: int = -1  # -1: the partition of the order assemble read it from


@dataclass(frozen=True)
class EndReservation:
    """An order's reservation ended by its asker: released (cancelled before the assembly),
    or used (assembled; the shop's assemble does not ask, its assembly is the use)."""

    order_id: str
    used: bool


@dataclass(frozen=True)
class Restock:
    """More of an ingredient; `restock_id` (the key) makes a restock sent twice count once."""

    restock_id: str
    ingredient: str
    amount: int

    @property
    def order_id(self) -> str:
        """The record's key: the runtime keys every event's work by `order_id`."""
        return self.restock_id


@dataclass(frozen=True)
class ReservationDecided:
    """The pantry's answer: the order's ingredients reserved, or `sold_out` names one that was
    short (and none is reserved). `partition` is where it goes, not part of its value."""

    order_id: str
    ingredients: tuple[str, ...]
    sold_out: str | None = None
    partition: int = -1

    @property
    def reserved(self) -> bool:
        return self.sold_out is None


@dataclass(frozen=True)
class ReservationEnded:
    """An order's reservation ended, once: used (assembled) or released (back in stock)."""

    order_id: str
    ingredients: tuple[str, ...]
    used: bool
    partition: int = -1


@dataclass(frozen=True)
class StockLevel:
    """How much of an ingredient is left (not reserved, not used)."""

    ingredient: str
    left: int

    @property
    def order_id(self) -> str:
        """The record's key: the runtime keys every event's work by `order_id`."""
        return self.ingredient


PantryEvent = (
    ReserveIngredients
    | EndReservation
    | Restock
    | ReservationDecided
    | ReservationEnded
    | StockLevel
)


# --- the values ------------------------------------------------------------------------------


class PantryValue(BaseModel):
    """An ask of the pantry: the value of `pizza-pantry`. Which fields it holds depends on
    `ask`: `reserve` has `ingredients` and `partition`, `restock` has `ingredient` and `amount`,
    `use` and `release` nothing more (the key is the order id, or a restock's own id)."""

    model_config = ConfigDict(extra="ignore")
    ask: Annotated[StrictStr, Field(json_schema_extra={"enum": list(Ask.ALL)})]
    ingredients: Annotated[list[Ingredient], Field(max_length=64)] | None = None
    partition: Annotated[StrictInt, Field(ge=0, le=100_000)] | None = None
    ingredient: Ingredient | None = None
    amount: Annotated[StrictInt, Field(ge=1, le=MAX_RESTOCK)] | None = None


class ReservedValue(BaseModel):
    """What became of an order's ingredients: the value of `pizza-reserved`. The pantry's
    answer first: `sold_out` names the ingredient it was short of (nothing is reserved then);
    absent, every one is reserved. Then, at most once, how the reservation `ended`: released
    (or used, when a "use" ask was sent; an assembly uses it without one)."""

    model_config = ConfigDict(extra="ignore")
    ingredients: Annotated[list[Ingredient], Field(max_length=64)]
    sold_out: Ingredient | None = None
    ended: Annotated[StrictStr, Field(json_schema_extra={"enum": list(ENDINGS)})] | None = None


class StockValue(BaseModel):
    """How much of an ingredient is left: the value of `pizza-stock` (the key names it)."""

    model_config = ConfigDict(extra="ignore")
    left: Annotated[StrictInt, Field(ge=0)]


def value_of(event: PantryEvent) -> BaseModel:
    match event:
        case ReserveIngredients(ingredients=ingredients, partition=partition):
            return PantryValue(ask=Ask.RESERVE, ingredients=list(ingredients), partition=partition)
        case EndReservation(used=used):
            return PantryValue(ask=Ask.USE if used else Ask.RELEASE)
        case Restock(ingredient=ingredient, amount=amount):
            return PantryValue(ask=Ask.RESTOCK, ingredient=ingredient, amount=amount)
        case ReservationDecided(ingredients=ingredients, sold_out=sold_out):
            return ReservedValue(ingredients=list(ingredients), sold_out=sold_out)
        case ReservationEnded(ingredients=ingredients, used=used):
            return ReservedValue(ingredients=list(ingredients), ended=USED if used else RELEASED)
        case StockLevel(left=left):
            return StockValue(left=left)


def ask_of(key: str, value: PantryValue) -> PantryEvent:
    """The event an ask's value stands for; ValueError naming what the ask lacks."""
    match value.ask:
        case Ask.RESERVE if value.ingredients and value.partition is not None:
            return ReserveIngredients(key, tuple(value.ingredients), value.partition)
        case Ask.USE | Ask.RELEASE:
            return EndReservation(key, used=value.ask == Ask.USE)
        case Ask.RESTOCK if value.ingredient is not None and value.amount is not None:
            return Restock(key, value.ingredient, value.amount)
        case Ask.RESERVE:
            raise ValueError("a reserve ask needs ingredients and the order's partition")
        case Ask.RESTOCK:
            raise ValueError("a restock ask needs an ingredient and an amount")
    raise ValueError(f"unknown ask {value.ask!r} (one of: {', '.join(Ask.ALL)})")


def reserved_of(key: str, value: ReservedValue) -> ReservationDecided | ReservationEnded:
    """The pantry's answer or a reservation's end, as the value says."""
    ingredients = tuple(value.ingredients)
    if value.ended is None:
        return ReservationDecided(key, ingredients, value.sold_out)
    if value.ended not in ENDINGS:
        raise ValueError(f"unknown end {value.ended!r} (one of: {', '.join(ENDINGS)})")
    return ReservationEnded(key, ingredients, used=value.ended == USED)
