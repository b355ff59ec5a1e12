"""The two front doors in alternating rounds: the shop's web app and the bench's hand-written
door (bare_door.py) side by side, on one broker and in front of one kitchen, each taking the
same load in turn.

Two bench runs one after another are minutes apart, and on a shared machine the cost of the
same work moves by a fifth in that time; rounds a few seconds apart see the same machine.
Each round places `orders` orders through one door (`concurrency` requests at once, signed-in
customers for the shop), measures the door's own CPU per order, its rate and its answers'
latency, then waits until the kitchen has taken everything, so the next round starts from
the same quiet shop. The doors take turns in the order bare, shop, shop, bare, ...: a drift
of the machine weighs on both alike. Each round of the shop beside the bare door's round
next to it is a pair.

    pizzashop bench --door-rounds 6 --orders 4000 --concurrency 50
"""

from __future__ import annotations

import math
import secrets
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from pizzashop.bench.contestants import (
    BARE_DOOR,
    bare_door_answering,
    kitchen_groups,
    ready_web,
    refuse_if_busy,
    start_bare_door,
    start_read_model_at_the_end,
    until,
    wait_until_restored,
)
from pizzashop.bench.front_door import WebOrderPlacer
from pizzashop.bench.groups import group_lag
from pizzashop.bench.load import bench_orders
from pizzashop.bench.meter import cpu_seconds
from pizzashop.bench.stocking import stock_for_the_rush
from pizzashop.config import Settings
from pizzashop.kafka.topics import create_topics
from pizzashop.local.ports import free_port
from pizzashop.local.shop import Child, start_part, stop_parts
from pizzashop.services import services_to_run

SHOP, BARE = "shop", BARE_DOOR
WARM_UP = 200  # orders through each door, not measured, before the first round
KITCHEN_WAIT = 120.0  # seconds for the kitchen to take a round's orders before the next


@dataclass(frozen=True)
class DoorRound:
    door: str
    orders_per_second: float
    p99_ms: float
    cpu_ms_per_order: float
    answers: dict[str, int]


@dataclass(frozen=True)
class DoorRounds:
    orders: int
    concurrency: int
    rounds: list[DoorRound]

    def pairs(self) -> list[tuple[DoorRound, DoorRound]]:
        """(shop, bare door) of each two rounds next to each other."""
        twos = [self.rounds[i : i + 2] for i in range(0, len(self.rounds) - 1, 2)]
        return [(a, b) if a.door == SHOP else (b, a) for a, b in twos]

    def table(self) -> str:
        lines = [f"{self.orders} orders a round, {self.concurrency} requests at once"]
        lines += [_round_line(r) for r in self.rounds]
        lines.append("shop / bare door, pair by pair:")
        for n, (shop, bare) in enumerate(self.pairs(), start=1):
            rate = shop.orders_per_second / bare.orders_per_second
            p99 = shop.p99_ms / bare.p99_ms
            cpu = shop.cpu_ms_per_order / bare.cpu_ms_per_order
            lines.append(
                f"  pair {n}: orders/s x{rate:.2f}, p99 x{p99:.2f}, CPU per order x{cpu:.2f}"
            )
        for door in (SHOP, BARE):
            each = [r.cpu_ms_per_order for r in self.rounds if r.door == door]
            lines.append(f"{door}: median {statistics.median(each):.3f} ms of CPU per order")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "pairs": [[asdict(s), asdict(b)] for s, b in self.pairs()]}


def _round_line(r: DoorRound) -> str:
    answers = ", ".join(f"{code} x{n}" for code, n in r.answers.items())
    return (
        f"  {r.door:9}  {r.orders_per_second:7.1f} orders/s  p99 {r.p99_ms:6.1f} ms  "
        f"{r.cpu_ms_per_order:.3f} ms CPU per order  ({answers})"
    )


def door_rounds(settings: Settings, rounds: int, orders: int, concurrency: int) -> DoorRounds:
    """`rounds` rounds, alternating the doors, on the broker of `settings`, which has the
    bench's fresh topics and read model."""
    settings = settings.replace(
        web_port=free_port(),
        secret_key=settings.secret_key or secrets.token_urlsafe(32),
        pantry_default_stock=max(settings.pantry_default_stock, rounds * orders + 2 * WARM_UP),
    )
    create_topics(settings)
    refuse_if_busy(settings, list(kitchen_groups(settings)))
    stock_for_the_rush(settings, settings.pantry_default_stock)
    start_read_model_at_the_end(settings)
    run = secrets.token_hex(3)  # the bare door's order ids are its keys: new ones each run
    with _doors(settings) as (doors, children):
        for door, (url, pid) in doors.items():  # warm-up: the first orders cost every part more
            _round(door, url, pid, settings, f"{run}-warm-{door[0]}", WARM_UP, concurrency)
        _wait_for_the_kitchen(settings, children)
        measured = []
        for n in range(rounds):
            door = (BARE, SHOP, SHOP, BARE)[n % 4]
            url, pid = doors[door]
            measured.append(_round(door, url, pid, settings, f"{run}-{n}", orders, concurrency))
            _wait_for_the_kitchen(settings, children)
    return DoorRounds(orders, concurrency, measured)


@contextmanager
def _doors(settings: Settings) -> Iterator[tuple[dict[str, tuple[str, int]], list[Child]]]:
    """The kitchen, the shop's web app and the bare door, running: each door's address and
    pid, and every process started."""
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    observed = {
        name: settings.replace(observe_port=free_port()) for name in services_to_run(settings)
    }
    started = [start_part(name, its, _log(logs, name)) for name, its in observed.items()]
    web = start_part("web", settings, _log(logs, "web"))
    bare, bare_url = start_bare_door(settings)
    children = [*started, web, bare]
    try:
        wait_until_restored(settings, observed, children)
        shop_url = ready_web(settings, children)
        bare_door_answering(bare_url, children, settings)
        doors = {SHOP: (shop_url, web.process.pid), BARE: (bare_url, bare.process.pid)}
        yield doors, children
    finally:
        stop_parts(children)


def _log(logs: Path, name: str) -> IO[bytes]:
    return (logs / f"{name}.log").open("wb")


def _round(
    door: str, url: str, pid: int, settings: Settings, run: str, orders: int, concurrency: int
) -> DoorRound:
    """One round of `orders` through one door, measured from the first order to the last
    answer (signing the customers in before it is not counted). Its orders' ids start with
    `run`."""
    assert settings.secret_key is not None, "set for the run"
    placer = WebOrderPlacer(url, settings.secret_key, concurrency, orders, bare=door == BARE)
    door_process = psutil.Process(pid)
    cpu_before = cpu_seconds(door_process)
    for order_id, order in bench_orders(run, orders):
        placer.place(order_id, order)
    placer.close()
    cpu = cpu_seconds(door_process) - cpu_before
    figures = placer.figures
    assert figures is not None, "set by close()"
    return DoorRound(
        door=door,
        orders_per_second=figures.orders_per_second,
        p99_ms=figures.latency_ms.p99 or math.nan,
        cpu_ms_per_order=round(1000 * cpu / orders, 3),
        answers=figures.answers,
    )


def _wait_for_the_kitchen(settings: Settings, children: list[Child]) -> None:
    """Until every service of the kitchen has taken every record on its topics."""
    groups = kitchen_groups(settings)
    until(
        lambda: all(group_lag(settings, g, t) == 0 for g, t in groups.items()),
        lambda: "the kitchen did not take a round's orders",
        children,
        settings,
        KITCHEN_WAIT,
    )
