"""One contestant measured, the shop or a pipeline beside it, each alike: once its groups hold
every partition, the rush is placed and followed while its processes are metered; then its lag,
once the last commits have landed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pizzashop.bench.front_door import WebOrderPlacer
from pizzashop.bench.groups import group_lag, partition_counts, wait_until_assigned
from pizzashop.bench.load import Placer
from pizzashop.bench.meter import ProcessMeter
from pizzashop.bench.plan import BenchError, BenchPlan
from pizzashop.bench.report import RunReport, run_report
from pizzashop.bench.rush import run_rush
from pizzashop.bench.watch import Watch
from pizzashop.config import Settings
from pizzashop.contract import Order
from pizzashop.local.shop import Child

READY_TIMEOUT = 90.0
LAG_SETTLE_SECONDS = 5.0


@dataclass(frozen=True)
class Contestant:
    """What takes the rush: the shop or a pipeline beside it, its processes and its groups,
    where its orders go in and where the bench sees them come out."""

    name: str
    children: list[Child]
    group_topics: dict[str, list[str]]  # consumer group -> the topics it reads
    open_placer: Callable[[], Placer]
    open_watch: Callable[[], Watch]


@dataclass(frozen=True)
class Rush:
    """What every contestant gets alike: the orders, when each is placed (seconds after the
    start), the plan, and the processes that share the machine (the broker, the bench)."""

    orders: list[tuple[str, Order]]
    schedule: list[float]
    plan: BenchPlan
    shared: dict[str, int]


def measure(run: Contestant, settings: Settings, rush: Rush) -> RunReport:
    topics = {t for ts in run.group_topics.values() for t in ts}
    partitions = partition_counts(settings, topics)
    expected = {g: sum(partitions[t] for t in ts) for g, ts in run.group_topics.items()}
    _wait_until_ready(settings, run.children, expected)
    placer = run.open_placer()
    meter = ProcessMeter({**{c.name: c.process.pid for c in run.children}, **rush.shared}).start()
    watch = run.open_watch()
    try:
        plan = rush.plan
        timeline = run_rush(
            rush.orders, rush.schedule, placer, watch, plan.timeout, run.name, plan.warm_up_count
        )
    finally:
        usage = meter.stop()
        watch.close()
    fail_if_any_died(run.children, settings.state_dir / "logs")
    front_door = placer.figures if isinstance(placer, WebOrderPlacer) else None
    lag = _settled_lag(settings, run.group_topics)
    own = [c.name for c in run.children]
    return run_report(run.name, timeline, lag, usage, own, front_door)


def _wait_until_ready(settings: Settings, children: list[Child], expected: dict[str, int]) -> None:
    try:
        wait_until_assigned(settings, expected, READY_TIMEOUT)
    except TimeoutError as e:
        fail_if_any_died(children, settings.state_dir / "logs")
        raise BenchError(str(e)) from None
    fail_if_any_died(children, settings.state_dir / "logs")


def fail_if_any_died(children: list[Child], logs: Path) -> None:
    dead = [
        f"{c.name} (exit {c.process.returncode})" for c in children if c.process.poll() is not None
    ]
    if dead:
        raise BenchError(f"{', '.join(dead)} stopped during the bench; see the logs in {logs}")


def _settled_lag(settings: Settings, group_topics: dict[str, list[str]]) -> dict[str, int]:
    """Each group's lag once the last commits have landed (they are asynchronous)."""
    deadline = time.monotonic() + LAG_SETTLE_SECONDS
    while True:
        lag = {g: group_lag(settings, g, topics) for g, topics in group_topics.items()}
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        time.sleep(0.2)  # commits have no event to wait on from outside the group
