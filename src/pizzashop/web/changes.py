"""One reader per web process follows the read model's changes and wakes the live streams of
the orders that moved, so a stream costs nothing while its order stands still.

Every status the read model stores gets the next number of its history (`seq`: SQLite's
AUTOINCREMENT, PostgreSQL's identity column, both the table's primary key), so "what changed
since I last looked" is one query on that key, however many streams are open: no new column,
no new index, and the read model's schema version stays as it is.

On PostgreSQL two status services may commit out of seq order: a row numbered below one
already seen can appear a moment later. The reader keeps looking from the first number it
has not seen until it turns up, or for `GAP_PATIENCE` seconds (a rolled-back insert leaves
a number unused for ever).

The reader runs while someone watches: the first stream starts it, the last one to leave
stops it. It also wakes every stream when the server starts to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from pizzashop.readmodel import reading
from pizzashop.readmodel.views import OrderViews

log = logging.getLogger("pizzashop.web")

LOOK_EVERY = 0.05  # seconds between two looks at the read model: the most a change waits for it
CHANGES_PER_LOOK = 5000
GAP_PATIENCE = 5.0  # seconds a missing seq is waited for before it counts as never written


class OrderChanges:
    def __init__(self, read_model: OrderViews, closing: Callable[[], bool]) -> None:
        self._read_model = read_model
        self._closing = closing
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._floor = 0  # every change numbered up to here has been handed over
        self._seen_above_floor: dict[int, float] = {}  # seq -> when the reader saw it

    @contextlib.asynccontextmanager
    async def watching(self, order_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set whenever the order may have moved (and when the server closes).

        Once this is entered, the reader has taken its position: whatever the read model
        stores from then on sets the event, so a stream reads its history after entering."""
        moved = asyncio.Event()
        self._watchers.setdefault(order_id, set()).add(moved)
        ready = self._start_reader()
        try:
            await ready.wait()
            yield moved
        finally:
            self._stop_watching(order_id, moved)

    def watched_orders(self) -> int:
        return len(self._watchers)

    def _start_reader(self) -> asyncio.Event:
        if self._reader is None or self._ready is None:
            self._ready = asyncio.Event()
            self._reader = asyncio.get_running_loop().create_task(self._follow(self._ready))
        return self._ready

    def _stop_watching(self, order_id: str, moved: asyncio.Event) -> None:
        watchers = self._watchers.get(order_id, set())
        watchers.discard(moved)
        if not watchers:
            self._watchers.pop(order_id, None)
        if not self._watchers and self._reader is not None:
            # Stopped at once, not at its next look: the event loop may be about to end.
            self._reader.cancel()
            self._reader = self._ready = None

    async def _follow(self, ready: asyncio.Event) -> None:
        failing = False
        while True:
            try:
                if not ready.is_set():
                    self._floor = await reading.read(self._read_model.last_history_seq)
                    self._seen_above_floor.clear()
                    ready.set()
                elif self._closing():
                    self._wake_every_stream()
                else:
                    await self._look()
                failing = False
            except Exception as e:  # any database's error: the streams wait, the reader retries
                if not failing:
                    log.warning("Live streams cannot follow the read model: %s; retrying", e)
                failing = True
            await asyncio.sleep(LOOK_EVERY)

    async def _look(self) -> None:
        changes = await reading.read(self._read_model.changes_after, self._floor, CHANGES_PER_LOOK)
        now = time.monotonic()
        for seq, order_id in changes:
            if seq in self._seen_above_floor:
                continue
            self._seen_above_floor[seq] = now
            for moved in self._watchers.get(order_id, ()):
                moved.set()
        self._raise_floor(now)

    def _raise_floor(self, now: float) -> None:
        """Up to the first seq not seen yet, or past it once it is overdue."""
        seen = self._seen_above_floor
        while seen:
            following = self._floor + 1
            if following in seen:
                del seen[following]
                self._floor = following
                continue
            lowest = min(seen)
            if now - seen[lowest] < GAP_PATIENCE:
                return
            self._floor = lowest - 1  # the numbers below it were never written

    def _wake_every_stream(self) -> None:
        for watchers in self._watchers.values():
            for moved in watchers:
                moved.set()
