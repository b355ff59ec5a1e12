"""The read model's thread: reads asked from async code come back, errors included, in turn."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pizzashop.readmodel import reading


def test_a_read_runs_in_the_read_models_thread_and_its_answer_comes_back() -> None:
    async def ask() -> tuple[str, int]:
        return await reading.read(lambda a, b: (threading.current_thread().name, a + b), 2, b=3)

    thread, total = asyncio.run(ask())
    assert (thread, total) == ("read-model", 5)


def test_a_reads_error_is_raised_to_its_caller_and_the_thread_goes_on() -> None:
    def broken() -> None:
        raise ValueError("no such table")

    async def ask() -> int:
        with pytest.raises(ValueError, match="no such table"):
            await reading.read(broken)
        return await reading.read(len, "after")

    assert asyncio.run(ask()) == 5


def test_a_caller_that_stops_waiting_leaves_the_reads_after_it_answered() -> None:
    release = threading.Event()

    async def ask() -> list[int]:
        slow = asyncio.ensure_future(reading.read(release.wait, 5))
        await asyncio.sleep(0)
        slow.cancel()
        following = asyncio.gather(*(reading.read(int, str(n)) for n in range(20)))
        release.set()
        return await following

    assert asyncio.run(ask()) == list(range(20))


def test_reads_from_two_event_loops_each_come_back_to_their_own() -> None:
    answers: dict[str, str] = {}

    def run(name: str) -> None:
        answers[name] = asyncio.run(reading.read(str.upper, name))

    threads = [threading.Thread(target=run, args=(name,)) for name in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert answers == {"first": "FIRST", "second": "SECOND"}
