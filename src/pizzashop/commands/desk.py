"""The order desk: where every front door hands its commands: placing and cancelling an order,
and restocking the pantry.

The JSON API, the pages and the CLI each turn their input into a command (`PlaceOrder`, or the
order to cancel), hand it to an `OrderDesk` in one call, and turn its answer or its exception
into their own (a status code, a page, an exit status). The rules live here once: the same
idempotency key is the same order, a known order is answered and not produced again, a key is
never used for two orders, the rate limit, producing, and waiting for the broker's word (and,
for a cancel, for assemble's decision).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pizzashop.commands.cancelling import CHECK_EVERY, DECISION_WAIT, CancelAnswer, Outcome, decided
from pizzashop.commands.ordering import OrderTaker, PlaceOrder, Written, order_id_for
from pizzashop.commands.rate_limit import OrderRateLimit
from pizzashop.config import Settings, shop_secret
from pizzashop.contract import CancelRequested, OrderPlaced, Restock, new_order_id, now_ms
from pizzashop.contract.pantry import MAX_RESTOCK
from pizzashop.kafka.reaching import check_broker
from pizzashop.menu import INGREDIENTS
from pizzashop.readmodel import OrderView, reading
from pizzashop.registry import use_schema_registry


class KeyUsedForAnotherOrder(ValueError):
    """An idempotency key that this customer used before, for a different order."""


class NotRestockable(ValueError):
    """A restock of something not on the menu, or of an amount out of bounds."""


class SoldOut(ValueError):
    """An order for a choice the pantry has none of left, as the front door last heard."""

    def __init__(self, ingredient: str) -> None:
        super().__init__(f"sold out: {ingredient}")
        self.ingredient = ingredient


class StockAtTheDoor(Protocol):
    """What a front door knows of the pantry's stock: the first of some ingredients it has
    none of left, or None. The pantry decides every order anyway; this spares the customer
    an order that is sure to end sold out."""

    async def sold_out(self, ingredients: Sequence[str]) -> str | None: ...


class NoStockAtTheDoor:
    """A front door that knows nothing of the stock (the command line): the pantry decides."""

    async def sold_out(self, ingredients: Sequence[str]) -> str | None:
        return None


@dataclass(frozen=True)
class Placement:
    placed: OrderPlaced
    replayed: bool  # the key's order was known already: nothing new was produced
    written: Written | None = None  # where it was written, when it was produced now


class KnownOrders(Protocol):
    """The orders a front door knows: where the desk finds an order again (a repeated key's
    order, a cancel's outcome), and where it notes one it has just placed."""

    def get_order(self, order_id: str) -> OrderView | None: ...

    def remember(self, placed: OrderPlaced, written: Written) -> None: ...


class ReadModelOrders:
    """The orders a front door with no memory of its own knows: those `read_order` finds, if
    any (the command line places one order a run; an order id it produces again is ignored
    by every service that has handled it)."""

    def __init__(self, read_order: Callable[[str], OrderView | None] | None = None) -> None:
        self._read_order = read_order

    def get_order(self, order_id: str) -> OrderView | None:
        return None if self._read_order is None else self._read_order(order_id)

    def remember(self, placed: OrderPlaced, written: Written) -> None:
        """Nothing to keep: the next run starts afresh."""


class OrderDesk:
    """Places and cancels orders for one front door, which gives it the broker (`taker`), the
    shop's secret (an idempotency key's order id), the orders it knows, the rate limit and
    how long a cancel waits for assemble's decision. Awaited, so the web's event loop goes on
    meanwhile; the command line runs it with `asyncio.run`."""

    def __init__(
        self,
        taker: OrderTaker,
        secret: str,
        orders: KnownOrders | None = None,
        rate_limit: OrderRateLimit | None = None,
        cancel_wait: float = DECISION_WAIT,
        stock: StockAtTheDoor | None = None,
    ) -> None:
        self.taker = taker
        self.orders = orders or ReadModelOrders()
        self.rate_limit = rate_limit or OrderRateLimit(per_minute=0)
        self.stock = stock or NoStockAtTheDoor()
        self.cancel_wait = cancel_wait  # seconds to wait for assemble's decision on a cancel
        self._secret = secret

    async def place(self, command: PlaceOrder) -> Placement:
        """The order of the command's key: the one known already, or produced now and
        acknowledged.

        KeyUsedForAnotherOrder when the key's order is known with other contents;
        TooManyOrders, before anything is produced, when the customer is over the rate limit
        (a known order is answered whatever the limit: it produces nothing); SoldOut, before
        anything is produced, for a choice the door knows is gone; OrderNotAccepted
        or OrderUnconfirmed (see ordering.py) when the broker did not say yes."""
        order = command.order
        order_id = order_id_for(self._secret, order.customer_id, command.idempotency_key)
        known = await reading.read(self.orders.get_order, order_id)
        if known is not None and known.order is not None and known.placed_at is not None:
            if known.order != order:
                raise KeyUsedForAnotherOrder("this idempotency key was used for another order")
            return Placement(OrderPlaced(order_id, known.order, known.placed_at), replayed=True)
        short = await self.stock.sold_out(order.ingredients())
        if short is not None:
            raise SoldOut(short)
        self.rate_limit.take(order.customer_id)
        placed, written = await self.taker.place_async(order, order_id)
        self.orders.remember(placed, written)
        return Placement(placed, replayed=False, written=written)

    async def cancel(self, view: OrderView) -> CancelAnswer:
        """Ask to cancel the order (once the broker has acknowledged it) unless it is decided
        already, and wait up to `cancel_wait` seconds for the outcome in the known orders.

        OrderNotAccepted or OrderUnconfirmed (see ordering.py) when the broker did not say yes."""
        known = decided(view)
        if known is not None:
            return CancelAnswer(known, view)
        cancel = CancelRequested(view.order_id, now_ms())
        await self.taker.send_async(cancel, view.partition_to_send_to)
        deadline = time.monotonic() + self.cancel_wait
        while True:
            latest = await reading.read(self.orders.get_order, view.order_id) or view
            outcome = decided(latest)
            if outcome is not None:
                return CancelAnswer(outcome, latest)
            if time.monotonic() >= deadline:
                return CancelAnswer(Outcome.UNDECIDED, latest)
            await asyncio.sleep(CHECK_EVERY)

    async def restock(self, ingredient: str, amount: int, form_key: str | None = None) -> Restock:
        """More of an ingredient for the pantry, once the broker has acknowledged it; its own
        id makes it count once however often it is delivered. A form's restock carries the
        key the form was drawn with: the same form sent twice is then one restock.

        NotRestockable for an ingredient not on the menu or an amount out of bounds, before
        anything is sent; OrderNotAccepted or OrderUnconfirmed (see ordering.py) as a cancel."""
        if ingredient not in INGREDIENTS:
            raise NotRestockable(f"{ingredient!r} is not on the menu")
        if not 1 <= amount <= MAX_RESTOCK:
            raise NotRestockable(f"a restock is 1 to {MAX_RESTOCK:,}, not {amount}")
        restock_id = (
            new_order_id()
            if form_key is None
            else restock_id_for(self._secret, form_key, ingredient, amount)
        )
        restock = Restock(restock_id, ingredient, amount)
        await self.taker.send_async(restock, 0)
        return restock


def restock_id_for(secret: str, form_key: str, ingredient: str, amount: int) -> str:
    """The id of a form's restock: the same for the same form sent again, another when the form
    was changed before it was sent again (so that one is not taken for the first and dropped);
    never an order's id, and as unguessable as one."""
    message = f"restock-id\0{form_key}\0{ingredient}\0{amount}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def desk_for_one_command(
    settings: Settings, orders: KnownOrders | None = None, cancel_wait: float = DECISION_WAIT
) -> OrderDesk:
    """A desk for a command that places or cancels one order and ends (the command line).
    It asks the broker first: one that is away is Unreachable at once, in one line, and
    nothing is sent, so nothing is ordered (rather than a wait that ends unconfirmed)."""
    check_broker(settings)
    use_schema_registry(settings)
    return OrderDesk(OrderTaker(settings), shop_secret(settings), orders, cancel_wait=cancel_wait)
