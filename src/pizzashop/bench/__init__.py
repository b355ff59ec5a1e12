"""`pizzashop bench`: a rush of orders through the real broker, measured end to end.

The bench starts the four services as processes of their own (a fresh state folder, quiet
logs), places the orders with one producer, follows each one into the read model, and
reports throughput, latency, consumer lag and what each process used. With `reference` it
first runs the same rush through a bare pass-through chain on the same broker, to show the
shop's figures against the practical limit of Kafka and the runtime's client settings; with
`peers`, through the same chain built with Quix Streams or Kafka Streams, to show them against
what a Python or a JVM user would otherwise pick (pipelines.py); with `without_pantry`,
through the same shop with stock not counted, to show what the pantry costs.

- `plan.py`: what is asked; `contestants.py`: the shop and the pipelines, started as processes;
  `measuring.py`: each measured alike; `rush.py`: the orders placed and followed.
- `report.py`: the figures, as a table, JSON and a plot; `watchers.py`: `--watchers`, the cost
  of open event streams to one web process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import secrets
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pizzashop.bench.contestants import (
    ready_web,
    run_bare_door,
    run_pipeline,
    run_shop,
    run_shop_without_pantry,
)
from pizzashop.bench.door_rounds import DoorRounds, door_rounds
from pizzashop.bench.groups import partition_counts
from pizzashop.bench.load import bench_orders, placement_schedule
from pizzashop.bench.measuring import Rush
from pizzashop.bench.plan import BenchError, BenchPlan
from pizzashop.bench.reference import Chain
from pizzashop.bench.report import RunReport, as_json, table, write_json, write_plot
from pizzashop.bench.spans import spans_dropped
from pizzashop.bench.stocking import stock_for_the_rush
from pizzashop.bench.watchers import WatchersReport, watch
from pizzashop.config import Settings
from pizzashop.contract import Order, Topic, framing
from pizzashop.kafka.cluster import start_local_kafka
from pizzashop.kafka.topics import create_topics
from pizzashop.local.ports import free_port
from pizzashop.local.shop import start_part, stop_parts
from pizzashop.registry import use_schema_registry
from pizzashop.registry.local import start_local_registry

__all__ = ["BenchError", "BenchPlan", "BenchResult", "run_bench", "run_watchers"]

log = logging.getLogger("pizzashop.bench")


@dataclass
class BenchResult:
    settings: dict[str, Any]
    shop: RunReport
    pipelines: list[RunReport]  # the reference chain's and the peers', in the order they ran
    state_dir: Path

    @property
    def all_delivered(self) -> bool:
        return all(r.all_delivered for r in [self.shop, *self.pipelines])

    def table(self) -> str:
        return table(self.shop, self.pipelines)

    def as_json(self) -> dict[str, Any]:
        return as_json(self.settings, self.shop, self.pipelines)

    def write_json(self, path: Path) -> None:
        write_json(path, self.as_json())

    def write_plot(self, path: Path) -> None:
        write_plot(path, self.shop, self.pipelines)


def run_bench(settings: Settings, plan: BenchPlan) -> BenchResult:
    if plan.without_pantry and not settings.count_stock:
        raise BenchError(
            "--without-pantry sets the shop beside itself without its pantry, but stock is "
            "not counted (PIZZASHOP_COUNT_STOCK=false): the shop has no pantry to compare"
        )
    # SIGTERM unwinds like Ctrl-C, so the services and the bench's broker are stopped too.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        return _run(settings, plan)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(settings: Settings, plan: BenchPlan) -> BenchResult:
    run_id = secrets.token_hex(3)
    state_dir = Path(tempfile.mkdtemp(prefix=f"pizzashop-bench-{run_id}-"))
    orders = bench_orders(run_id, plan.warm_up_count + plan.count)
    settings = _quiet_in_its_own_folder(settings, state_dir).replace(
        # The bench works out the order ids the web app gives its orders (see front_door.py).
        secret_key=settings.secret_key or secrets.token_urlsafe(32),
        # A rush measures the kitchen, not the pantry running out: one of each for each order.
        pantry_default_stock=max(settings.pantry_default_stock, _stock_needed(plan, orders)),
    )
    schedule = placement_schedule(len(orders), plan.rate)
    try:
        with (
            _broker(settings) as (settings, broker_pids),
            _registry(settings, plan) as (settings, registry_pids),
        ):
            create_topics(settings)
            stock_for_the_rush(settings, settings.pantry_default_stock)
            settings = settings.replace(partitions=_partitions(settings, plan))
            # The broker and the bench share the machine with what is measured: meter them too.
            shared = {**broker_pids, **registry_pids, "bench (places, watches)": os.getpid()}
            rush = Rush(orders, schedule, plan, shared)
            others = _before_the_shop(settings, rush, run_id)
            with _traced(plan):
                shop = run_shop(settings, rush)
    except BaseException:
        log.error("The bench's logs are kept in %s", state_dir)
        raise
    if not plan.keep_state and shop.all_delivered:
        shutil.rmtree(state_dir, ignore_errors=True)
    return BenchResult(_described(settings, plan), shop, others, state_dir)


def _stock_needed(plan: BenchPlan, orders: list[tuple[str, Order]]) -> int:
    """One of each ingredient for each order of each run with a pantry: the shop's, and the
    same kitchen's behind the bare door."""
    return len(orders) * (2 if plan.through_web else 1)


def _before_the_shop(settings: Settings, rush: Rush, run_id: str) -> list[RunReport]:
    """What the shop is set beside, run first, on the same broker: the pipelines, the same
    kitchen behind a hand-written front door, the same shop without its pantry."""
    plan = rush.plan
    others = [run_pipeline(settings, rush, Chain(p.label, run_id), p) for p in plan.pipelines]
    if plan.through_web:
        others.append(run_bare_door(settings, rush))
    if plan.without_pantry:
        with _traced(plan):  # traced as the shop is, so that only the pantry differs
            others.append(run_shop_without_pantry(settings, rush))
    return others


def _traced(plan: BenchPlan) -> contextlib.AbstractContextManager[None]:
    return spans_dropped() if plan.tracing else contextlib.nullcontext()


def run_door_rounds(settings: Settings, rounds: int, orders: int, concurrency: int) -> DoorRounds:
    """The shop's front door and the bare one in alternating rounds (see door_rounds.py)."""
    state_dir = Path(tempfile.mkdtemp(prefix="pizzashop-bench-doors-"))
    settings = _quiet_in_its_own_folder(settings, state_dir)
    with _broker(settings) as (settings, _pids):
        report = door_rounds(settings, rounds, orders, concurrency)
    shutil.rmtree(state_dir, ignore_errors=True)
    return report


def run_watchers(settings: Settings, watchers: int, idle_seconds: float) -> WatchersReport:
    """What `watchers` open event streams cost one web process (see watchers.py)."""
    state_dir = Path(tempfile.mkdtemp(prefix="pizzashop-bench-watchers-"))
    settings = _quiet_in_its_own_folder(settings, state_dir).replace(web_port=free_port())
    with _broker(settings) as (settings, _pids):
        create_topics(settings)
        logs = state_dir / "logs"
        logs.mkdir(exist_ok=True)
        web = start_part("web", settings, output=(logs / "web.log").open("wb"))
        try:
            url = ready_web(settings, [web])
            report = asyncio.run(watch(url, web.process.pid, settings, watchers, idle_seconds))
        finally:
            stop_parts([web])
    shutil.rmtree(state_dir, ignore_errors=True)
    return report


def _quiet_in_its_own_folder(settings: Settings, state_dir: Path) -> Settings:
    """Warnings only in the logs, and a fresh read model in the bench's own state folder."""
    return settings.replace(
        state_dir=state_dir,
        log_level="WARNING",
        database_url=f"sqlite:///{state_dir / 'readmodel.sqlite3'}",
    )


def _partitions(settings: Settings, plan: BenchPlan) -> int:
    """The partitions each topic really has: on a configured cluster they may exist already."""
    partitions = partition_counts(settings, [str(Topic.ORDERED)])[str(Topic.ORDERED)]
    if plan.partitions is not None and partitions != plan.partitions:
        raise BenchError(
            f"--partitions {plan.partitions}: the topics exist already on "
            f"{settings.bootstrap_servers}, with {partitions} partitions each"
        )
    return partitions


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _registry(settings: Settings, plan: BenchPlan) -> Iterator[tuple[Settings, dict[str, int]]]:
    """With `plan.registry`, a local Schema Registry of the bench's own on a free port, its
    schemas in the bench's state folder (and its pid); the bench's own records are framed too."""
    if not plan.registry:
        yield settings, {}
        return
    local = start_local_registry(settings.replace(registry_port=free_port()))
    try:
        settings = settings.replace(schema_registry_url=local.url)
        use_schema_registry(settings)
        yield settings, {"schema registry": pid} if (pid := local.pid()) else {}
    finally:
        framing.use(None)  # the bench's own records plain again
        local.stop()


@contextlib.contextmanager
def _broker(settings: Settings) -> Iterator[tuple[Settings, dict[str, int]]]:
    """The configured cluster, or a local broker of the bench's own on free ports (and its pid)."""
    if not settings.uses_local_broker:
        yield settings, {}
        return
    settings = settings.replace(kafka_port=free_port(), kafka_controller_port=free_port())
    broker = start_local_kafka(settings)
    try:
        pids = {
            f"kafka broker {n.node_id}": pid for n in broker.nodes if (pid := n.pid()) is not None
        }
        yield settings.replace(bootstrap_servers=broker.bootstrap_servers), pids
    finally:
        broker.stop()


def _described(settings: Settings, plan: BenchPlan) -> dict[str, Any]:
    return {
        "orders": plan.count,
        "pipelines": [p.name for p in plan.pipelines],
        "without_pantry": plan.without_pantry,
        "count_stock": settings.count_stock,
        "rate": plan.rate,
        "duration": plan.duration,
        "warm_up": plan.warm_up,
        "time_scale": settings.time_scale,
        "capacity": settings.capacity,
        "partitions": settings.partitions,
        "processing_guarantee": settings.processing_guarantee,
        "metrics": settings.metrics,
        "tracing": plan.tracing,
        "registry": plan.registry,
        "through": "web" if plan.through_web else "kafka",
        "concurrency": plan.concurrency if plan.through_web else None,
        "bootstrap_servers": settings.bootstrap_servers,
        "kafka_version": settings.kafka_version,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "end_to_end": "placed (the order's timestamp) to seen delivered in the read model by the bench",
    }
