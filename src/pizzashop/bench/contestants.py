"""The bench's contestants, started as processes of their own: the shop (its services, and
its web app when the orders go through the front door), the same shop without its pantry,
and each pipeline beside it (a process for each hop of the reference chain, on topics of its
own). Each is measured alike (measuring.py) and stopped after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pizzashop.bench.front_door import WebOrderPlacer
from pizzashop.bench.groups import (
    active_members,
    create_bench_topics,
    delete_groups,
    delete_topics,
    partition_counts,
)
from pizzashop.bench.load import OrderPlacer, Placer
from pizzashop.bench.measuring import READY_TIMEOUT, Contestant, Rush, fail_if_any_died, measure
from pizzashop.bench.pipelines import Pipeline, PipelineUnavailable
from pizzashop.bench.plan import BenchError
from pizzashop.bench.reference import Chain
from pizzashop.bench.report import RunReport
from pizzashop.bench.watch import ReadModelWatch, TopicWatch
from pizzashop.config import Settings, as_environment
from pizzashop.contract import SERVICES, Topic, group_id
from pizzashop.kafka.lag import end_offsets
from pizzashop.local.ports import free_port
from pizzashop.local.shop import Child, start_part, stop_parts
from pizzashop.services import services_to_run

BARE_DOOR = "bare door"
WITHOUT_PANTRY = "shop without pantry"
WITHOUT_PANTRY_IDS = "-without-pantry"  # what ends the ids of its orders

# --- the shop ------------------------------------------------------------------------------


def run_shop(settings: Settings, rush: Rush, name: str = "shop") -> RunReport:
    """The shop: its services, and its web app when the orders go through the front door."""
    through_web = rush.plan.through_web
    if through_web:
        settings = settings.replace(web_port=free_port())
    logs = _logs_folder(settings)
    web = [start_part("web", settings, output=(logs / "web.log").open("wb"))] if through_web else []
    return _run_kitchen(
        settings, rush, name, web,
        (lambda: _web_placer(settings, web, rush)) if through_web
        else (lambda: OrderPlacer(settings, str(Topic.ORDERED))),
    )  # fmt: skip


def run_shop_without_pantry(settings: Settings, rush: Rush) -> RunReport:
    """The same shop with stock not counted: no pantry, and assemble makes each order at once.
    Its orders get ids of their own, since the shop that runs next on the same topics would
    take the same ids for orders it has handled, and ignore them."""
    own_ids = [(f"{order_id}{WITHOUT_PANTRY_IDS}", order) for order_id, order in rush.orders]
    return run_shop(
        settings.replace(count_stock=False), replace(rush, orders=own_ids), WITHOUT_PANTRY
    )


def run_bare_door(settings: Settings, rush: Rush) -> RunReport:
    """The same kitchen behind the bench's hand-written front door (bare_door.py), the
    yardstick of the shop's own."""
    door, url = start_bare_door(settings)
    return _run_kitchen(
        settings, rush, BARE_DOOR, [door],
        lambda: WebOrderPlacer(bare_door_answering(url, [door], settings), "",
                               rush.plan.concurrency, len(rush.orders), bare=True),
    )  # fmt: skip


def start_bare_door(settings: Settings) -> tuple[Child, str]:
    """The bench's hand-written front door (bare_door.py), started on a free port: its
    process, and its address."""
    port = free_port()
    door = Child(
        BARE_DOOR,
        subprocess.Popen(
            [sys.executable, "-m", "pizzashop.bench.bare_door", str(port),
             str(settings.bootstrap_servers)],
            stdout=(_logs_folder(settings) / "bare-door.log").open("wb"),
            stderr=subprocess.STDOUT,
        ),
    )  # fmt: skip
    return door, f"http://127.0.0.1:{port}"


def bare_door_answering(url: str, children: list[Child], settings: Settings) -> str:
    """The bare door's address, once it answers /openapi.json, as any FastAPI app does once
    it is up."""
    return answering(url, children, settings, "/openapi.json")


def kitchen_groups(settings: Settings) -> dict[str, list[str]]:
    """Each service's consumer group, and the topics it reads."""
    return {group_id(name): [str(t) for t in SERVICES[name]] for name in services_to_run(settings)}


def _run_kitchen(
    settings: Settings, rush: Rush, name: str, doors: list[Child], open_placer: Callable[[], Placer]
) -> RunReport:
    """The shop's services started beside `doors`, measured as contestant `name`, then stopped."""
    running = services_to_run(settings)
    group_topics = kitchen_groups(settings)
    refuse_if_busy(settings, list(group_topics))
    start_read_model_at_the_end(settings)
    logs = _logs_folder(settings)
    observed = {service: settings.replace(observe_port=free_port()) for service in running}
    services = [
        start_part(service, observed[service], output=(logs / f"{service}.log").open("wb"))
        for service in running
    ]
    children = [*services, *doors]

    def placer_once_restored() -> Placer:
        """A service given its partitions first rebuilds its state from what an earlier run
        on the same broker left: the rush waits for that, as it waits for the assignment."""
        wait_until_restored(settings, observed, children)
        return open_placer()

    try:
        contestant = Contestant(
            name, children, group_topics, open_placer=placer_once_restored,
            open_watch=lambda: ReadModelWatch(settings.state_dir / "readmodel.sqlite3"),
        )  # fmt: skip
        return measure(contestant, settings, rush)
    finally:
        stop_parts(children)


def _logs_folder(settings: Settings) -> Path:
    logs = settings.state_dir / "logs"
    logs.mkdir(exist_ok=True)
    return logs


def _web_placer(settings: Settings, children: list[Child], rush: Rush) -> WebOrderPlacer:
    url = ready_web(settings, children)
    assert settings.secret_key is not None, "set by the bench for its run"
    return WebOrderPlacer(url, settings.secret_key, rush.plan.concurrency, len(rush.orders))


def ready_web(settings: Settings, children: list[Child]) -> str:
    """The address of the bench's web app, once it answers /readyz with 200."""
    return answering(f"http://{settings.web_host}:{settings.web_port}", children, settings)


def answering(url: str, children: list[Child], settings: Settings, path: str = "/readyz") -> str:
    """`url`, once it answers `path` with 200."""
    until(lambda: _answers_ready(url + path), lambda: f"{url} was not ready", children, settings)
    return url


def wait_until_restored(
    settings: Settings, observed: dict[str, Settings], children: list[Child]
) -> None:
    """Until each service says, on /readyz, that every partition it holds has its state."""
    topics = {str(topic) for service in observed for topic in SERVICES[service]}
    partitions = partition_counts(settings, topics)
    waiting = {
        service: (
            f"http://{its.observe_host}:{its.observe_port}/readyz",
            sum(partitions[str(topic)] for topic in SERVICES[service]),
        )
        for service, its in observed.items()
    }

    def all_restored() -> bool:
        for service, (url, held) in list(waiting.items()):
            if _partitions_restored(url) >= held:
                del waiting[service]
        return not waiting

    until(all_restored, lambda: f"{', '.join(waiting)}: state not restored", children, settings)


def until(
    done: Callable[[], bool],
    failure: Callable[[], str],
    children: list[Child],
    settings: Settings,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Until `done()`; a BenchError saying `failure()` after `timeout` seconds, or at once
    when one of `children` died."""
    deadline = time.monotonic() + timeout
    while not done():
        fail_if_any_died(children, settings.state_dir / "logs")
        if time.monotonic() > deadline:
            raise BenchError(f"{failure()} within {timeout:g}s")
        time.sleep(0.1)  # a process starting up or restoring has nothing to wait on from outside


def _partitions_restored(url: str) -> int:
    """What /readyz says, ready (200) or not (503, while it joins or after a failure)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            body = answer.read()
    except urllib.error.HTTPError as e:
        body = e.read()
    except OSError:  # refused while it starts
        return 0
    return int(json.loads(body).get("partitions_restored", 0))


def _answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:  # refused while it starts, or 503 (an HTTPError) while not ready
        return False


def refuse_if_busy(settings: Settings, group_ids: list[str]) -> None:
    """Another shop on the same cluster would share the groups and take half the orders."""
    busy = {g: n for g, n in active_members(settings, group_ids).items() if n}
    if busy:
        raise BenchError(
            f"a shop is already running on {settings.bootstrap_servers} (members: {busy}); "
            "stop it, or run the bench on its own local broker"
        )


def start_read_model_at_the_end(settings: Settings) -> None:
    """The bench's fresh read model starts where the topics end, so the status service does not
    replay a shared cluster's history before the rush."""
    from pizzashop.readmodel.store import open_readmodel

    read_model = open_readmodel(settings.readmodel_url)
    try:
        read_model.writer.apply([], end_offsets(settings, SERVICES["status"]))
    finally:
        read_model.close()


# --- the reference chain and the peers ------------------------------------------------------


def run_pipeline(settings: Settings, rush: Rush, chain: Chain, pipeline: Pipeline) -> RunReport:
    try:
        commands = [
            (name, pipeline.hop_command(settings, name, source, target))
            for name, source, target in chain.hops()
        ]
    except PipelineUnavailable as e:
        raise BenchError(str(e)) from None
    create_bench_topics(settings, chain.topics, settings.partitions)
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
        return measure(contestant, settings, rush)
    finally:
        stop_parts(children)
        delete_groups(settings, list(group_topics))
        delete_topics(settings, chain.topics)


def _start_hop(settings: Settings, name: str, command: list[str], logs: Path) -> Child:
    process = subprocess.Popen(
        command,
        env={**os.environ, **as_environment(settings)},
        stdout=(logs / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Child(name, process)
