"""The read model read from async code (the web app, the order desk): in one thread of its own.

A database is one connection behind a lock (database.py), so its reads run one at a time
however many threads ask. Handed to asyncio's pool of several threads, each read woke a
thread only for it to wait on that lock, and the hand-overs cost more CPU than the reads
(py-spy, under a rush through the front door). One thread takes the reads in turn, and
under load it finds the next one waiting without being woken. It is a queue and a thread
rather than a one-thread executor: the executor's locks and its future, wrapped for the
event loop, were a tenth of the web process's CPU when placing an order.
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
    while True:
        loop, answered, function = _asked.get()
        try:
            result = function()
        except BaseException as e:  # the caller's to handle, as if it had read itself
            settle_from_thread(loop, answered, error=e)
        else:
            settle_from_thread(loop, answered, result)


def settle_from_thread(
    loop: asyncio.AbstractEventLoop,
    answered: asyncio.Future[T],
    result: T | None = None,
    error: BaseException | None = None,
) -> None:
    """Settle an event loop's future from another thread: `error` raised to its awaiter, else
    `result`. Nothing when the loop has ended (a command line's) or its awaiter stopped
    waiting. The read model's thread and the order taker's reports answer with it."""
    with contextlib.suppress(RuntimeError):  # the loop has ended: no one to tell
        loop.call_soon_threadsafe(_give, answered, result, error)


def _give(answered: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if answered.done():  # its awaiter stopped waiting
        return
    if error is None:
        answered.set_result(result)
    else:
        answered.set_exception(error)
