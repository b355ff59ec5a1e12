"""The read model read from async code (the web app, the order desk): in one thread of its own.

A database is one connection behind a lock (database.py), so its reads run one at a time
however many threads ask. Handed to asyncio's pool of several threads, each read woke a
thread only for it to wait on that lock, and the hand-overs cost more CPU than the reads
(py-spy, under a rush through the front door). One thread takes the reads in turn, and
under load it finds the next one waiting without being woken. It is a queue and a thread
rather than a one-thread executor: the executor's locks and its future, wrapped for the
event loop, were a tenth of the web process's CPU when placing an order.

The answers of the reads waiting together go back to their event loop together
(`Settlements`): one hand-over to the loop for all of them, not one each. The order taker's
delivery reports go back the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# A read asked: the loop that awaits it, the future it settles there, and the read itself.
Asked = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]

# An outcome for a loop's future: the future, its result, or the error to raise instead.
Settled = tuple["asyncio.Future[Any]", Any, BaseException | None]
ANSWERED_TOGETHER = 64  # at most this many reads' answers go back in one hand-over

_asked: queue.SimpleQueue[Asked] = queue.SimpleQueue()
_starting = threading.Lock()
_reader: threading.Thread | None = None


async def read(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` run in the read model's thread, awaited."""
    _start_once()
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[T] = loop.create_future()
    _asked.put((loop, answered, functools.partial(function, *args, **kwargs)))
    return await answered


def _start_once() -> None:
    global _reader
    if _reader is None:
        with _starting:
            if _reader is None:
                _reader = threading.Thread(target=_serve, name="read-model", daemon=True)
                _reader.start()


def _serve() -> None:
    settlements = Settlements()
    while True:
        asked = [_asked.get()]
        with contextlib.suppress(queue.Empty):
            while len(asked) < ANSWERED_TOGETHER:
                asked.append(_asked.get_nowait())
        for loop, answered, function in asked:
            try:
                result = function()
            except BaseException as e:  # the caller's to handle, as if it had read itself
                settlements.add(loop, answered, error=e)
            else:
                settlements.add(loop, answered, result)
        settlements.hand_over()


class Settlements:
    """Futures of event loops, settled from another thread in batches: `add` each outcome,
    then `hand_over` gives each loop all of its own at once. Every hand-over wakes the loop's
    thread, and a thread switch costs more than settling a future: the web process switched
    threads a third less often per order with its answers handed over together."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the reports' thread and a closing taker's may both add
        self._waiting: dict[asyncio.AbstractEventLoop, list[Settled]] = {}

    def add(
        self,
        loop: asyncio.AbstractEventLoop,
        answered: asyncio.Future[T],
        result: T | None = None,
        error: BaseException | None = None,
    ) -> None:
        """`error` to be raised to the future's awaiter, else `result`, at the next hand-over."""
        with self._lock:
            self._waiting.setdefault(loop, []).append((answered, result, error))

    def hand_over(self) -> None:
        """Settle what was added, each loop's in one call on its own thread. Nothing for a loop
        that has ended (a command line's) or a future whose awaiter stopped waiting."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for loop, settled in waiting.items():
            with contextlib.suppress(RuntimeError):  # the loop has ended: no one to tell
                loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[Settled]) -> None:
    for answered, result, error in settled:
        if answered.done():  # its awaiter stopped waiting
            continue
        if error is None:
            answered.set_result(result)
        else:
            answered.set_exception(error)
