"""What the web app knows about orders: the read model, plus the orders it has just placed.

An order's id comes from its customer and an idempotency key (`ordering.order_id_for`): the
same key is the same order, in any web process, before and after a restart. The order desk
(commands/desk.py) answers an order this process or the read model already knows from here,
and does not produce it again.

Read-your-writes without a dual write: an order the broker has acknowledged is kept in a
small in-memory list of this process until the read model has it, and shown from there at
status 100. Nothing about it is written anywhere but `pizza-ordered`.

Another web process has no such list. The customer's signed session cookie carries where
their orders were written (`pizza-ordered` partition -> the newest offset, so at most one
entry a partition); a process asked about an order it cannot find, or for the list of a
customer's orders, first waits (bounded, without blocking) until the read model's stored
resume offset of each such partition is past it: the status service stores those offsets
in the same transaction as the views, so then the orders are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from starlette.requests import Request

from pizzashop.commands.desk import OrderDesk
from pizzashop.commands.ordering import Written
from pizzashop.contract import OrderPlaced, Status, Topic
from pizzashop.operator.story import StoryRecord
from pizzashop.readmodel import OrderView, StatusEntry, reading
from pizzashop.readmodel.views import OrderViews
from pizzashop.web.changes import OrderChanges

JUST_PLACED_LIMIT = 1000
# How long a web process waits for the read model to catch up with a customer's orders
# written through another process, and how often it looks meanwhile.
CATCH_UP_WAIT = 3.0
CATCH_UP_CHECK_EVERY = 0.05
KEEP_ALIVE_EVERY = 15.0


# Reads an order's records from Kafka (`story.read_story` with the app's settings).
StoryReader = Callable[[OrderView], list[StoryRecord]]


def book_of(request: Request) -> OrderBook:
    """The order book of the app serving this request."""
    book: OrderBook = request.app.state.book
    return book


def desk_of(request: Request) -> OrderDesk:
    """The order desk of the app serving this request: where it places and cancels orders."""
    desk: OrderDesk = request.app.state.desk
    return desk


def story_reader_of(request: Request) -> StoryReader:
    """How the app serving this request reads an order's records from Kafka."""
    reader: StoryReader = request.app.state.read_story
    return reader


class OrderBook:
    def __init__(self, read_model: OrderViews, changes: OrderChanges | None = None) -> None:
        self.read_model = read_model
        self.changes = changes or OrderChanges(read_model, closing=lambda: False)
        self._just_placed: OrderedDict[str, OrderPlaced] = OrderedDict()
        self._written_here: OrderedDict[Written, None] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, placed: OrderPlaced, written: Written) -> None:
        """An order this process has just placed, shown from here until the read model has it."""
        with self._lock:
            self._just_placed[placed.order_id] = placed
            self._written_here[written] = None
            while len(self._just_placed) > JUST_PLACED_LIMIT:
                self._just_placed.popitem(last=False)
            while len(self._written_here) > JUST_PLACED_LIMIT:
                self._written_here.popitem(last=False)

    def get_order(self, order_id: str) -> OrderView | None:
        """The order as this process knows it: the read model's, else one it has just placed."""
        view = self.read_model.get_order(order_id)
        if view is None or view.order is None:
            view = self._just_placed_view(order_id) or view
        return view

    def order_of(self, customer_id: str, order_id: str) -> OrderView | None:
        """The customer's order, or None: someone else's order is as unknown as no order."""
        view = self.get_order(order_id)
        if view is None or view.customer_id != customer_id:
            return None
        return view

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

    async def order_seen_by(
        self, customer_id: str, order_id: str, writes: Mapping[int, int]
    ) -> OrderView | None:
        """`order_of`, for a customer whose orders were written at `writes` (partition ->
        offset): an order found neither in the read model nor among this process's just
        placed ones was placed through another process, so it is looked for again once the
        read model has read past all of them."""
        view = await reading.read(self.order_of, customer_id, order_id)
        if view is None and await self.catch_up(writes):
            view = await reading.read(self.order_of, customer_id, order_id)
        return view

    async def orders_seen_by(self, customer_id: str, writes: Mapping[int, int]) -> list[OrderView]:
        """`orders_of`, once the read model has the customer's orders written at `writes`
        through other processes (this one's are in its just-placed list already). An older
        order on a partition whose newest one was placed here may show a moment later."""
        with self._lock:
            elsewhere = {p: o for p, o in writes.items() if Written(p, o) not in self._written_here}
        await self.catch_up(elsewhere)
        return await reading.read(self.orders_of, customer_id)

    async def catch_up(self, writes: Mapping[int, int]) -> bool:
        """Waits, up to CATCH_UP_WAIT, until the read model has read `pizza-ordered` past each
        of `writes`. True when there was something to wait for and the read model now has it."""
        deadline = time.monotonic() + CATCH_UP_WAIT
        while writes:
            applied = await reading.read(self.read_model.read_up_to)
            if all(applied.get((str(Topic.ORDERED), p), 0) > o for p, o in writes.items()):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(CATCH_UP_CHECK_EVERY)
        return False

    async def status_changes(
        self, order_id: str, after_seq: int, over: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[str]:
        """Server-sent events for each new status of an order, then `end` once it is final.

        The stream reads the read model when the process's reader says the order moved (see
        changes.py), and otherwise only says it is still here now and then. It stops when
        `over()` says so (the client left, or the server is closing): a browser then
        reconnects with Last-Event-ID and misses nothing.
        """
        last = after_seq
        async with self.changes.watching(order_id) as moved:
            while not await over():
                moved.clear()
                entries, view = await reading.read(self._news_of, order_id, last)
                for entry in entries:
                    last = entry.seq
                    yield sse_event(entry, view.status if view else entry.status)
                if view is not None and view.status.is_final:
                    if not entries:
                        yield END_OF_STREAM
                        return
                    continue  # look once more at once: a step may have landed between reads
                if not await _set_within(moved, KEEP_ALIVE_EVERY):
                    yield ": still here\n\n"

    def _news_of(self, order_id: str, after_seq: int) -> tuple[list[StatusEntry], OrderView | None]:
        entries = self.read_model.history_after(order_id, after_seq)
        # Read after the entries, so the order's status is never behind the ones sent.
        return entries, self.read_model.get_order(order_id)


async def _set_within(event: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


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
            "cancellable": not order_status.is_final and not entry.status.is_assembled,
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
