"""`pizzashop bench`: a rush of orders through the real broker, measured end to end.

The bench starts the four services as processes of their own (a fresh state folder, quiet
logs), places the orders with one producer, follows each one into the read model, and
reports throughput, latency, consumer lag and what each process used. With `reference` it
first runs the same rush through a bare pass-through chain on the same broker, to show the
shop's figures against the practical limit of Kafka and the runtime's client settings; with
`peers`, through the same chain built with Quix Streams or Kafka Streams, to show them against
what a Python or a JVM user would otherwise pick (pipelines.py).
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
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pizzashop.bench import groups
from pizzashop.bench.front_door import WebOrderPlacer
from pizzashop.bench.load import OrderPlacer, Placer, bench_orders, placement_schedule
from pizzashop.bench.meter import ProcessMeter
from pizzashop.bench.pipelines import PEERS, REFERENCE, Pipeline, PipelineUnavailable
from pizzashop.bench.reference import Chain
from pizzashop.bench.report import RunReport, as_json, run_report, table, write_json, write_plot
from pizzashop.bench.rush import run_rush
from pizzashop.bench.spans import spans_dropped
from pizzashop.bench.watch import ReadModelWatch, TopicWatch, Watch
from pizzashop.bench.watchers import WatchersReport, watch
from pizzashop.config import Settings, as_environment
from pizzashop.contract import SERVICES, Order, Topic, group_id
from pizzashop.kafka.lag import end_offsets
from pizzashop.local.ports import free_port
from pizzashop.local.shop import Child, start_part, stop_parts

log = logging.getLogger("pizzashop.bench")

READY_TIMEOUT = 90.0
LAG_SETTLE_SECONDS = 5.0


class BenchError(RuntimeError):
    """The bench cannot run as asked; the message says why."""


@dataclass(frozen=True)
class BenchPlan:
    """How many orders, how fast, and which pipelines to run before the shop."""

    orders: int | None = None
    rate: float | None = None  # orders per second, for `duration` seconds
    duration: float | None = None
    partitions: int | None = None  # of the topics the bench creates; None: the setting
    reference: bool = False
    peers: tuple[str, ...] = ()  # names in pipelines.PEERS
    timeout: float = 300.0  # seconds after the last order is placed
    warm_up: float = 0.0  # seconds at `rate` before the measured orders, left out of the figures
    keep_state: bool = False
    tracing: bool = False  # the services export spans (to a sink of the bench's own)
    through_web: bool = False  # orders placed with POST /api/orders, not produced to Kafka
    concurrency: int = 8  # requests at once, through the web

    @property
    def count(self) -> int:
        if self.orders is not None:
            return self.orders
        if self.rate is None or self.duration is None:
            raise BenchError("give --orders N, or --rate R with --duration S")
        return max(1, round(self.rate * self.duration))

    @property
    def pipelines(self) -> list[Pipeline]:
        """What runs the rush before the shop, in this order."""
        return ([REFERENCE] if self.reference else []) + [PEERS[name] for name in self.peers]

    @property
    def warm_up_count(self) -> int:
        if not self.warm_up:
            return 0
        if self.rate is None:
            raise BenchError(
                "--warm-up goes with --rate (a burst has no steady state to warm up to)"
            )
        return round(self.rate * self.warm_up)


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
    # SIGTERM unwinds like Ctrl-C, so the services and the bench's broker are stopped too.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        return _run(settings, plan)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(settings: Settings, plan: BenchPlan) -> BenchResult:
    run_id = secrets.token_hex(3)
    state_dir = Path(tempfile.mkdtemp(prefix=f"pizzashop-bench-{run_id}-"))
    settings = settings.replace(
        state_dir=state_dir,
        log_level="WARNING",
        database_url=f"sqlite:///{state_dir / 'readmodel.sqlite3'}",
        # The bench works out the order ids the web app gives its orders (see front_door.py).
        secret_key=settings.secret_key or secrets.token_urlsafe(32),
    )
    orders = bench_orders(run_id, plan.warm_up_count + plan.count)
    schedule = placement_schedule(len(orders), plan.rate)
    try:
        with _broker(settings) as (settings, broker_pids):
            from pizzashop.kafka.topics import create_topics

            create_topics(settings)
            settings = settings.replace(partitions=_partitions(settings, plan))
            # The broker and the bench share the machine with what is measured: meter them too.
            shared = {**broker_pids, "bench (places, watches)": os.getpid()}
            rush = Rush(orders, schedule, plan, shared)
            others = [
                _run_pipeline(settings, rush, Chain(p.label, run_id), p) for p in plan.pipelines
            ]
            with spans_dropped() if plan.tracing else contextlib.nullcontext():
                shop = _run_shop(settings, rush)
    except BaseException:
        log.error("The bench's logs are kept in %s", state_dir)
        raise
    if not plan.keep_state and shop.all_delivered:
        shutil.rmtree(state_dir, ignore_errors=True)
    return BenchResult(_described(settings, plan), shop, others, state_dir)


def run_watchers(settings: Settings, watchers: int, idle_seconds: float) -> WatchersReport:
    """What `watchers` open event streams cost one web process (see watchers.py)."""
    state_dir = Path(tempfile.mkdtemp(prefix="pizzashop-bench-watchers-"))
    settings = settings.replace(
        state_dir=state_dir,
        log_level="WARNING",
        database_url=f"sqlite:///{state_dir / 'readmodel.sqlite3'}",
        web_port=free_port(),
    )
    with _broker(settings) as (settings, _pids):
        from pizzashop.kafka.topics import create_topics

        create_topics(settings)
        logs = state_dir / "logs"
        logs.mkdir(exist_ok=True)
        web = start_part("web", settings, output=(logs / "web.log").open("wb"))
        try:
            url = _ready_web(settings, [web])
            report = asyncio.run(watch(url, web.process.pid, settings, watchers, idle_seconds))
        finally:
            stop_parts([web])
    shutil.rmtree(state_dir, ignore_errors=True)
    return report


def _partitions(settings: Settings, plan: BenchPlan) -> int:
    """The partitions each topic really has: on a configured cluster they may exist already."""
    partitions = groups.partition_counts(settings, [str(Topic.ORDERED)])[str(Topic.ORDERED)]
    if plan.partitions is not None and partitions != plan.partitions:
        raise BenchError(
            f"--partitions {plan.partitions}: the topics exist already on "
            f"{settings.bootstrap_servers}, with {partitions} partitions each"
        )
    return partitions


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _broker(settings: Settings) -> Iterator[tuple[Settings, dict[str, int]]]:
    """The configured cluster, or a local broker of the bench's own on free ports (and its pid)."""
    if not settings.uses_local_broker:
        yield settings, {}
        return
    from pizzashop.kafka.cluster import start_local_kafka

    settings = settings.replace(kafka_port=free_port(), kafka_controller_port=free_port())
    broker = start_local_kafka(settings)
    try:
        pids = {
            f"kafka broker {n.node_id}": pid for n in broker.nodes if (pid := n.pid()) is not None
        }
        yield settings.replace(bootstrap_servers=broker.bootstrap_servers), pids
    finally:
        broker.stop()


# --- the shop ------------------------------------------------------------------------------


def _run_shop(settings: Settings, rush: Rush) -> RunReport:
    group_topics = {group_id(name): [str(t) for t in topics] for name, topics in SERVICES.items()}
    _refuse_if_busy(settings, list(group_topics))
    _start_read_model_at_the_end(settings)
    logs = settings.state_dir / "logs"
    logs.mkdir(exist_ok=True)
    through_web = rush.plan.through_web
    if through_web:
        settings = settings.replace(web_port=free_port())
    parts = [*SERVICES, *(["web"] if through_web else [])]
    children = [
        start_part(name, settings, output=(logs / f"{name}.log").open("wb")) for name in parts
    ]
    try:
        shop = Contestant(
            "shop", children, group_topics,
            open_placer=(
                (lambda: _web_placer(settings, children, rush)) if through_web
                else (lambda: OrderPlacer(settings, str(Topic.ORDERED)))
            ),
            open_watch=lambda: ReadModelWatch(settings.state_dir / "readmodel.sqlite3"),
        )  # fmt: skip
        return _measure(shop, settings, rush)
    finally:
        stop_parts(children)


def _web_placer(settings: Settings, children: list[Child], rush: Rush) -> WebOrderPlacer:
    url = _ready_web(settings, children)
    assert settings.secret_key is not None, "set by the bench for its run"
    return WebOrderPlacer(url, settings.secret_key, rush.plan.concurrency, len(rush.orders))


def _ready_web(settings: Settings, children: list[Child]) -> str:
    """The address of the bench's web app, once it answers /readyz with 200."""
    url = f"http://{settings.web_host}:{settings.web_port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while not _answers_ready(url):
        _fail_if_any_died(children, settings.state_dir / "logs")
        if time.monotonic() > deadline:
            raise BenchError(f"the web app at {url} was not ready within {READY_TIMEOUT:g}s")
        time.sleep(0.1)  # a process starting up has nothing to wait on from outside
    return url


def _answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:  # refused while it starts, or 503 (an HTTPError) while not ready
        return False


def _refuse_if_busy(settings: Settings, group_ids: list[str]) -> None:
    """Another shop on the same cluster would share the groups and take half the orders."""
    busy = {g: n for g, n in groups.active_members(settings, group_ids).items() if n}
    if busy:
        raise BenchError(
            f"a shop is already running on {settings.bootstrap_servers} (members: {busy}); "
            "stop it, or run the bench on its own local broker"
        )


def _start_read_model_at_the_end(settings: Settings) -> None:
    """The bench's fresh read model starts where the topics end, so the status service does not
    replay a shared cluster's history before the rush."""
    from pizzashop.readmodel.store import open_readmodel

    read_model = open_readmodel(settings.readmodel_url)
    try:
        read_model.writer.apply([], end_offsets(settings, SERVICES["status"]))
    finally:
        read_model.close()


# --- the reference chain and the peers ------------------------------------------------------


def _run_pipeline(settings: Settings, rush: Rush, chain: Chain, pipeline: Pipeline) -> RunReport:
    try:
        commands = [
            (name, pipeline.hop_command(settings, name, source, target))
            for name, source, target in chain.hops()
        ]
    except PipelineUnavailable as e:
        raise BenchError(str(e)) from None
    groups.create_bench_topics(settings, chain.topics, settings.partitions)
    logs = settings.state_dir / "logs"
    logs.mkdir(exist_ok=True)
    children = [_start_hop(settings, name, command, logs) for name, command in commands]
    group_topics = {chain.group_of(name): [source] for name, source, _ in chain.hops()}
    try:
        contestant = Contestant(
            pipeline.name, children, group_topics,
            open_placer=lambda: OrderPlacer(settings, chain.topic("ordered")),
            open_watch=lambda: TopicWatch(settings, chain.topic("delivered"), chain.hop_name("watch")),
        )  # fmt: skip
        return _measure(contestant, settings, rush)
    finally:
        stop_parts(children)
        groups.delete_groups(settings, list(group_topics))
        groups.delete_topics(settings, chain.topics)


def _start_hop(settings: Settings, name: str, command: list[str], logs: Path) -> Child:
    process = subprocess.Popen(
        command,
        env={**os.environ, **as_environment(settings)},
        stdout=(logs / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Child(name, process)


# --- measuring -----------------------------------------------------------------------------


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


def _measure(run: Contestant, settings: Settings, rush: Rush) -> RunReport:
    topics = {t for ts in run.group_topics.values() for t in ts}
    partitions = groups.partition_counts(settings, topics)
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
    _fail_if_any_died(run.children, settings.state_dir / "logs")
    front_door = placer.figures if isinstance(placer, WebOrderPlacer) else None
    lag = _settled_lag(settings, run.group_topics)
    own = [c.name for c in run.children]
    return run_report(run.name, timeline, lag, usage, own, front_door)


def _wait_until_ready(settings: Settings, children: list[Child], expected: dict[str, int]) -> None:
    try:
        groups.wait_until_assigned(settings, expected, READY_TIMEOUT)
    except TimeoutError as e:
        _fail_if_any_died(children, settings.state_dir / "logs")
        raise BenchError(str(e)) from None
    _fail_if_any_died(children, settings.state_dir / "logs")


def _fail_if_any_died(children: list[Child], logs: Path) -> None:
    dead = [
        f"{c.name} (exit {c.process.returncode})" for c in children if c.process.poll() is not None
    ]
    if dead:
        raise BenchError(f"{', '.join(dead)} stopped during the bench; see the logs in {logs}")


def _settled_lag(settings: Settings, group_topics: dict[str, list[str]]) -> dict[str, int]:
    """Each group's lag once the last commits have landed (they are asynchronous)."""
    deadline = time.monotonic() + LAG_SETTLE_SECONDS
    while True:
        lag = {g: groups.group_lag(settings, g, topics) for g, topics in group_topics.items()}
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        time.sleep(0.2)  # commits have no event to wait on from outside the group


def _described(settings: Settings, plan: BenchPlan) -> dict[str, Any]:
    return {
        "orders": plan.count,
        "pipelines": [p.name for p in plan.pipelines],
        "rate": plan.rate,
        "duration": plan.duration,
        "warm_up": plan.warm_up,
        "time_scale": settings.time_scale,
        "capacity": settings.capacity,
        "partitions": settings.partitions,
        "processing_guarantee": settings.processing_guarantee,
        "metrics": settings.metrics,
        "tracing": plan.tracing,
        "through": "web" if plan.through_web else "kafka",
        "concurrency": plan.concurrency if plan.through_web else None,
        "bootstrap_servers": settings.bootstrap_servers,
        "kafka_version": settings.kafka_version,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "end_to_end": "placed (the order's timestamp) to seen delivered in the read model by the bench",
    }
