"""One reader per web process follows the read model and wakes the streams whose order moved."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from pizzashop import contract
from pizzashop.config import load_settings
from pizzashop.contract import Status, StatusChanged
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.web import changes
from pizzashop.web.app import create_app
from pizzashop.web.changes import OrderChanges
from tests.shop_harness import served
from tests.unit.test_web import GOOD, AcknowledgingTaker


@pytest.fixture
def read_model(tmp_path: Path) -> Iterator[ReadModel]:
    model = open_readmodel(f"sqlite:///{tmp_path / 'rm.sqlite3'}")
    yield model
    model.close()


class CountedChanges:
    """A read model's change feed, scripted: what each look finds, and how many looks."""

    def __init__(self, looks: list[list[tuple[int, str]]]) -> None:
        self.looks = looks
        self.asked = 0

    def last_history_seq(self) -> int:
        return 0

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, str]]:
        self.asked += 1
        found = self.looks[min(self.asked, len(self.looks)) - 1]
        return [(s, order_id) for s, order_id in found if s > seq][:limit]


def test_idle_streams_cost_one_query_a_look_however_many_there_are() -> None:
    feed = CountedChanges([[]])
    order_changes = OrderChanges(feed, closing=lambda: False)  # type: ignore[arg-type]  # only the change feed is read

    async def watch_quietly() -> None:
        async with contextlib.AsyncExitStack() as streams:
            for n in range(500):
                await streams.enter_async_context(order_changes.watching(f"order-{n}"))
            await asyncio.sleep(0.5)  # the time that passes is what is measured

    asyncio.run(watch_quietly())
    looks = 0.5 / changes.LOOK_EVERY
    assert feed.asked <= looks + 2, f"{feed.asked} queries for 500 idle streams in {looks:g} looks"
    assert order_changes.watched_orders() == 0, "every stream let go"


def test_a_change_numbered_before_one_already_seen_still_wakes_its_stream() -> None:
    # PostgreSQL: seq 1 (order a) commits after seq 2 (order b) was read.
    feed = CountedChanges([[(2, "b")], [(1, "a"), (2, "b")]])
    order_changes = OrderChanges(feed, closing=lambda: False)  # type: ignore[arg-type]  # only the change feed is read

    async def woken() -> bool:
        async with order_changes.watching("a") as moved:
            await asyncio.wait_for(moved.wait(), 2)
            return moved.is_set()

    assert asyncio.run(woken()), "the late change of order a woke its stream"


def test_a_stream_gets_each_change_as_the_read_model_stores_it(
    tmp_path: Path, read_model: ReadModel
) -> None:
    taker = AcknowledgingTaker()
    settings = load_settings(state_dir=tmp_path, secret_key="test-secret")
    app = create_app(settings, read_model, taker)  # type: ignore[arg-type]  # a stand-in for the OrderTaker
    with served(app) as running, httpx.Client(base_url=running.url, timeout=10) as browser:
        browser.post("/api/session", json={"name": "Italo"})
        order_id = browser.post("/api/orders", json=GOOD).json()["order_id"]
        read_model.writer.apply(taker.placed, {})
        with browser.stream("GET", f"/api/orders/{order_id}/events") as stream:
            lines = stream.iter_lines()
            assert '"status": 100' in next(line for line in lines if line.startswith("data:"))
            for status in (Status.IN_OVEN, Status.OUT_FOR_DELIVERY):
                read_model.writer.apply([StatusChanged(order_id, status, contract.now_ms())], {})
                data = next(line for line in lines if line.startswith("data:"))
                assert re.search(rf'"status": {status.value}\b', data), data
