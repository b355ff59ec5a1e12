"""The read model read from async code (the web app, the order desk): in one thread of its own.

A database is one connection behind a lock (database.py), so its reads run one at a time
however many threads ask. Handed to asyncio's pool of several threads, each read woke a
thread only for it to wait on that lock, and the hand-overs cost more CPU than the reads
(py-spy, under a rush through the front door). One thread takes the reads in turn, and
under load it finds the next one waiting without being woken.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_READER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-model")


async def read(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` run in the read model's thread, awaited."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_READER, functools.partial(function, *args, **kwargs))
