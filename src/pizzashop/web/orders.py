"""What the web app knows about orders: the read model, plus the orders it has just placed.

An order's id comes from its customer and an idempotency key (`ordering.order_id_for`): the
same key is the same order, in any web process, before and after a restart. An order this
process or the read model already knows is answered from there and not produced again.

Read-your-writes without a dual write: an order the broker has acknowledged is kept in a
small in-memory list of this process until the read model has it, and shown from there at
status 100. Nothing about it is written anywhere but `pizza-ordered`. (A session cookie
would survive a restart of the web app, but would grow with every order and travel with
every request; the gap it covers is a fraction of a second.)
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request

from pizzashop.cancelling import DECISION_WAIT, CancelAnswer, cancel_order
from pizzashop.contract import Order, OrderPlaced, Status
from pizzashop.ordering import OrderTaker, order_id_for
from pizzashop.readmodel import OrderView, ReadModel, StatusEntry
from pizzashop.story import StoryRecord
from pizzashop.web.limits import OrderRateLimit

JUST_PLACED_LIMIT = 1000
CHECK_EVERY = 0.2  # how often a live stream looks at the read model
KEEP_ALIVE_EVERY = 15.0


# Reads an order's records from Kafka (`story.read_story` with the app's settings).
StoryReader = Callable[[OrderView], list[StoryRecord]]


class KeyUsedForAnotherOrder(ValueError):
    """An idempotency key that this customer used before, for a different order."""


@dataclass(frozen=True)
class Placement:
    placed: OrderPlaced
    replayed: bool  # the key's order was known already: nothing new was produced


def book_of(request: Request) -> OrderBook:
    """The order book of the app serving this request."""
    book: OrderBook = request.app.state.book
    return book


def story_reader_of(request: Request) -> StoryReader:
    """How the app serving this request reads an order's records from Kafka."""
    reader: StoryReader = request.app.state.read_story
    return reader


class OrderBook:
    def __init__(
        self,
        read_model: ReadModel,
        order_taker: OrderTaker,
        secret: str,
        rate_limit: OrderRateLimit | None = None,
        cancel_wait: float = DECISION_WAIT,
    ) -> None:
        self.read_model = read_model
        self.order_taker = order_taker
        self.rate_limit = rate_limit or OrderRateLimit(per_minute=0)
        self.cancel_wait = cancel_wait  # seconds to wait for bake's decision on a cancel
        self._secret = secret
        self._just_placed: OrderedDict[str, OrderPlaced] = OrderedDict()
        self._lock = threading.Lock()

    def place(self, order: Order, idempotency_key: str) -> Placement:
        """The order of this key: the one known already, or produced now and acknowledged.

        OrderNotAccepted or OrderUnconfirmed (see ordering.py) when the broker did not say yes;
        KeyUsedForAnotherOrder when the key's order is known with other contents;
        TooManyOrders, before anything is produced, when the customer is over the rate limit
        (a known order is answered whatever the limit: it produces nothing)."""
        order_id = order_id_for(self._secret, order.customer_id, idempotency_key)
        known = self.order_of(order.customer_id, order_id)
        if known is not None and known.order is not None and known.placed_at is not None:
            if known.order != order:
                raise KeyUsedForAnotherOrder("this idempotency key was used for another order")
            return Placement(OrderPlaced(order_id, known.order, known.placed_at), replayed=True)
        self.rate_limit.take(order.customer_id)
        placed = self.order_taker.place(order, order_id)
        self._remember(placed)
        return Placement(placed, replayed=False)

    def _remember(self, placed: OrderPlaced) -> None:
        with self._lock:
            self._just_placed[placed.order_id] = placed
            while len(self._just_placed) > JUST_PLACED_LIMIT:
                self._just_placed.popitem(last=False)

    def order_of(self, customer_id: str, order_id: str) -> OrderView | None:
        """The customer's order, or None: someone else's order is as unknown as no order."""
        view = self.read_model.get_order(order_id)
        if view is None or view.order is None:
            view = self._just_placed_view(order_id) or view
        if view is None or view.customer_id != customer_id:
            return None
        return view

    def cancel(self, view: OrderView) -> CancelAnswer:
        """Ask to cancel the customer's order and wait for bake's decision (cancelling.py)."""
        return cancel_order(view, self.order_taker, self.read_model.get_order, self.cancel_wait)

    def orders_of(self, customer_id: str) -> list[OrderView]:
        known = self.read_model.orders_of(customer_id)
        seen = {v.order_id for v in known}
        with self._lock:
            pending = [
                p
                for p in self._just_placed.values()
                if p.order.customer_id == customer_id and p.order_id not in seen
            ]
        views = known + [_as_received(p) for p in pending]
        return sorted(views, key=lambda v: v.placed_at or 0, reverse=True)

    def _just_placed_view(self, order_id: str) -> OrderView | None:
        with self._lock:
            placed = self._just_placed.get(order_id)
        return _as_received(placed) if placed else None

    async def status_changes(
        self, order_id: str, after_seq: int, over: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[str]:
        """Server-sent events for each new status of an order, then `end` once it is final.

        It also stops when `over()` says so (the client left, or the server is closing): a
        browser then reconnects with Last-Event-ID and misses nothing.
        """
        last, quiet = after_seq, 0.0
        while not await over():
            entries = await asyncio.to_thread(self.read_model.history_after, order_id, last)
            # Read after the entries, so the order's status is never behind the ones sent.
            view = await asyncio.to_thread(self.read_model.get_order, order_id)
            for entry in entries:
                last = entry.seq
                yield sse_event(entry, view.status if view else entry.status)
            if view is not None and view.status.is_final and not entries:
                yield END_OF_STREAM
                return
            quiet = 0.0 if entries else quiet + CHECK_EVERY
            if quiet >= KEEP_ALIVE_EVERY:
                quiet = 0.0
                yield ": still here\n\n"
            await asyncio.sleep(CHECK_EVERY)


END_OF_STREAM = "event: end\ndata: {}\n\n"


def sse_event(entry: StatusEntry, order_status: Status) -> str:
    """One step of the history, with the status the order shows now.

    The order's status is not always the newest step (a stuck mark stays until the order
    moves on; a late step never moves it back), so the page shows what the read model
    says rather than working it out again.
    """
    data = json.dumps(
        {
            "status": entry.status.value,
            "text": entry.status.text,
            "timestamp": entry.timestamp,
            "error": entry.status.is_error,
            "order_status": order_status.value,
            "order_status_text": order_status.text,
            "final": order_status.is_final,
            # False once a step says a cancel can no longer win: the page hides its button.
            "cancellable": not order_status.is_final and not entry.status.leaves_the_oven,
        }
    )
    return f"id: {entry.seq}\nevent: status\ndata: {data}\n\n"


def _as_received(placed: OrderPlaced) -> OrderView:
    return OrderView(
        order_id=placed.order_id,
        customer_id=placed.order.customer_id,
        order=placed.order,
        placed_at=placed.timestamp,
        status=Status.RECEIVED,
        history=(StatusEntry(0, Status.RECEIVED, placed.timestamp),),
        updated_at=placed.timestamp,
    )
