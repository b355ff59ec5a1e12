"""`pizzashop bench --watchers N`: what N customers watching their orders cost one web process.

The bench starts a web app (a real uvicorn process, on the bench's broker and a read model of
its own), signs N customers in, places one order for each straight into the read model (the
bench stands in for the status service: no kitchen runs), and opens each customer's event
stream, as the order page does. It then reports the web process's CPU while nothing changes,
and, when every order moves on at once (in steps of `MOVE_STEP` orders), how long each
change took from the read model to its stream.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import psutil

from pizzashop import contract, menu
from pizzashop.bench.meter import cpu_seconds
from pizzashop.bench.report import Spread
from pizzashop.config import Settings
from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged
from pizzashop.readmodel.store import open_readmodel
from pizzashop.readmodel.writer import OrderWriter

MOVE_STEP = 100  # orders moved in one write of the read model, as the status service batches
MOVE_EVERY = 0.1  # seconds between two steps: 1,000 changes a second
STREAM_TIMEOUT = 60.0  # seconds


@dataclass(frozen=True)
class WatchersReport:
    watchers: int
    idle_seconds: float
    idle_cpu_share: float  # of one core, the web process, while nothing changes
    moving_cpu_share: float  # of one core, while every order moves on
    change_to_stream_ms: Spread
    changes_missed: int

    def table(self) -> str:
        spread = self.change_to_stream_ms
        return "\n".join(
            [
                f"{self.watchers} open event streams on one web process",
                f"  nothing changing ({self.idle_seconds:g} s): "
                f"{self.idle_cpu_share:.1%} of a core",
                f"  every order moving ({MOVE_STEP} changes each {MOVE_EVERY:g} s): "
                f"{self.moving_cpu_share:.1%} of a core",
                f"  change to stream: p50 {spread.p50:.0f} ms, p99 {spread.p99:.0f} ms, "
                f"max {spread.max:.0f} ms; {self.changes_missed} changes never arrived",
            ]
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def watch(
    url: str, web_pid: int, settings: Settings, watchers: int, idle: float
) -> WatchersReport:
    read_model = open_readmodel(settings.readmodel_url)
    web = psutil.Process(web_pid)
    async with _client(url, watchers) as client:
        orders = await _watched_orders(client, read_model.writer, watchers)
        arrived: dict[str, float] = {}
        streams = await _open_streams(client, orders, arrived)
        idle_share = await _cpu_share(web, idle)
        started = cpu_seconds(web), time.monotonic()
        moved = await _move(read_model.writer, list(orders))
        await _until(lambda: len(arrived) >= len(orders), STREAM_TIMEOUT)
        moving_share = (cpu_seconds(web) - started[0]) / (time.monotonic() - started[1])
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    read_model.close()
    latencies = [(arrived[o] - moved[o]) * 1000 for o in moved if o in arrived]
    return WatchersReport(
        watchers=watchers,
        idle_seconds=idle,
        idle_cpu_share=round(idle_share, 4),
        moving_cpu_share=round(moving_share, 4),
        change_to_stream_ms=Spread.of(latencies),
        changes_missed=len(moved) - len(latencies),
    )


def _client(url: str, watchers: int) -> aiohttp.ClientSession:
    """Each request carries its customer's cookie by hand; a stream stays open for good."""
    return aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=watchers + 10),
        timeout=aiohttp.ClientTimeout(total=None, connect=STREAM_TIMEOUT),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def _watched_orders(
    client: aiohttp.ClientSession, writer: OrderWriter, watchers: int
) -> dict[str, tuple[str, str]]:
    """One order for each customer signed in, placed straight into the read model: order id ->
    (customer id, session cookie)."""
    customers = await _sign_in(client, watchers)
    orders = {f"watched-{secrets.token_hex(6)}": c for c in customers}
    placed = [
        OrderPlaced(order_id, _pizza(customer_id), contract.now_ms())
        for order_id, (customer_id, _) in orders.items()
    ]
    await asyncio.to_thread(writer.apply, placed, {})
    return orders


async def _open_streams(
    client: aiohttp.ClientSession, orders: dict[str, tuple[str, str]], arrived: dict[str, float]
) -> list[asyncio.Task[None]]:
    """Each order's event stream, once every one is open."""
    opened = asyncio.Semaphore(0)
    streams = [
        asyncio.create_task(_follow(client, order_id, cookie, arrived, opened))
        for order_id, (_, cookie) in orders.items()
    ]
    for _ in streams:
        await asyncio.wait_for(opened.acquire(), STREAM_TIMEOUT)
    return streams


def _pizza(customer_id: str) -> Order:
    return Order(
        customer_id=customer_id,
        name="Watcher",
        sauce=menu.SAUCES[0],
        cheese=menu.CHEESES[0],
        main_topping=menu.MAIN_TOPPINGS[0],
        extra_toppings=[],
    )


async def _sign_in(client: aiohttp.ClientSession, count: int) -> list[tuple[str, str]]:
    """(customer id, session cookie) of each customer, one sign-in each."""
    gate = asyncio.Semaphore(20)

    async def sign_in(n: int) -> tuple[str, str]:
        async with gate, client.post("/api/session", json={"name": f"Watcher {n}"}) as answer:
            answer.raise_for_status()
            cookie = answer.headers["set-cookie"].split(";", 1)[0]
            return (await answer.json())["customer_id"], cookie

    return list(await asyncio.gather(*(sign_in(n) for n in range(count))))


async def _follow(
    client: aiohttp.ClientSession,
    order_id: str,
    cookie: str,
    arrived: dict[str, float],
    opened: asyncio.Semaphore,
) -> None:
    """Read one order's stream: its first event counts it open; its 200 is timed."""
    path = f"/api/orders/{order_id}/events"
    async with client.get(path, headers={"Cookie": cookie}) as stream:
        async for raw in stream.content:
            line = raw.decode()
            if not line.startswith("data:"):
                continue
            status = json.loads(line.removeprefix("data:"))["status"]
            if status == Status.RECEIVED:
                opened.release()
            elif status == Status.IN_OVEN:
                arrived[order_id] = time.monotonic()


async def _move(writer: OrderWriter, order_ids: list[str]) -> dict[str, float]:
    """Every order into the oven, a step of them at a time; when each step was stored."""
    moved: dict[str, float] = {}
    for start in range(0, len(order_ids), MOVE_STEP):
        step = order_ids[start : start + MOVE_STEP]
        changes = [StatusChanged(o, Status.IN_OVEN, contract.now_ms()) for o in step]
        await asyncio.to_thread(writer.apply, changes, {})
        stored = time.monotonic()
        moved.update(dict.fromkeys(step, stored))
        await asyncio.sleep(MOVE_EVERY)
    return moved


async def _cpu_share(process: psutil.Process, seconds: float) -> float:
    before = cpu_seconds(process)
    await asyncio.sleep(seconds)  # the quiet time is what is measured
    return (cpu_seconds(process) - before) / seconds


async def _until(done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
