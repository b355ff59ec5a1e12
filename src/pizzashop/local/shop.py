"""`pizzashop up`: the whole shop in the foreground, each service in its own process.

It starts the local broker when no cluster is configured, creates the topics, starts the
services (no pantry while stock is not counted) and the web app (`instances` of each, the
web processes on neighbouring ports), and on Ctrl-C (or SIGTERM) stops them all, then the
broker. With `--registry` it starts the local Schema Registry too, and every part frames its
records with its ids.
A part that exits on its own is restarted, with a loud log line and a growing wait; a part
that keeps failing (5 exits within a minute) stops the whole shop with exit code 1, since a
shop missing a service would only pile up work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from pizzashop.config import Settings, as_environment, shop_secret
from pizzashop.local.ports import free_port
from pizzashop.observe.health import Readiness
from pizzashop.observe.metrics import PART_RESTARTS
from pizzashop.observe.server import ObserveServer
from pizzashop.registry import use_schema_registry
from pizzashop.runtime.wedge import WEDGED_EXIT_CODE
from pizzashop.services import SERVICE_NAMES, services_to_run

log = logging.getLogger("pizzashop.local.shop")

STOP_TIMEOUT = 20.0
HEARTBEAT = 0.2


class PartProcess(Protocol):
    """What the shop needs of a running part: a `subprocess.Popen`, or a fake in tests."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


@dataclass
class Child:
    name: str
    process: PartProcess


@dataclass(frozen=True)
class RestartPolicy:
    first_wait: float = 1.0
    longest_wait: float = 30.0
    healthy_after: float = 60.0  # a part up this long starts again from the first wait
    exits_to_give_up: int = 5
    give_up_window: float = 60.0


@dataclass
class Part:
    """One part of the shop as the supervisor sees it: its process and its recent failures."""

    child: Child
    started_at: float
    next_wait: float
    exits: deque[float] = field(default_factory=deque)
    restart_at: float | None = None  # set while it waits for its restart


class Supervisor:
    """Decides when a part that exited is started again, and when the shop gives up on it.

    It never waits itself: `look_after_parts()` is called on every heartbeat, notes the exits,
    and restarts the parts whose wait is over, so one part's wait delays nothing else.
    """

    def __init__(
        self,
        names: Iterable[str],
        start: Callable[[str], Child],
        clock: Callable[[], float] = time.monotonic,
        policy: RestartPolicy = RestartPolicy(),
    ) -> None:
        self._start = start
        self._clock = clock
        self.policy = policy
        self._names = list(names)
        self.parts: dict[str, Part] = {}

    def start_all(self) -> None:
        # One at a time, so that `children` holds every part started should a start fail.
        for name in self._names:
            child = self._start(name)
            self.parts[name] = Part(child, self._clock(), next_wait=self.policy.first_wait)

    @property
    def children(self) -> list[Child]:
        return [part.child for part in self.parts.values()]

    def waiting(self) -> dict[str, float]:
        """The parts waiting for their restart, and the seconds each has left to wait."""
        now = self._clock()
        return {
            name: part.restart_at - now
            for name, part in self.parts.items()
            if part.restart_at is not None
        }

    def look_after_parts(self) -> str | None:
        """Note exits, restart the parts whose wait is over; the name of one that keeps failing."""
        for name, part in self.parts.items():
            if part.restart_at is None and part.child.process.poll() is not None:
                if self._recent_exits(part) >= self.policy.exits_to_give_up:
                    log.error(
                        "%s exited with code %s, its %d exits within %gs: it keeps "
                        "failing; stopping the shop",
                        name,
                        describe_exit(part.child.process.returncode),
                        len(part.exits),
                        self.policy.give_up_window,
                    )
                    return name
                self._schedule_restart(name, part)
            if part.restart_at is not None and self._clock() >= part.restart_at:
                PART_RESTARTS.labels(name).inc()
                part.child = self._start(name)
                part.started_at, part.restart_at = self._clock(), None
        return None

    def _recent_exits(self, part: Part) -> int:
        """Counts the exit just seen: how many the part had within the give-up window."""
        now = self._clock()
        part.exits.append(now)
        while part.exits[0] < now - self.policy.give_up_window:
            part.exits.popleft()
        return len(part.exits)

    def _schedule_restart(self, name: str, part: Part) -> None:
        now = self._clock()
        if now - part.started_at >= self.policy.healthy_after:
            part.next_wait = self.policy.first_wait
        wait = part.next_wait
        part.next_wait = min(2 * wait, self.policy.longest_wait)
        part.restart_at = now + wait
        log.error(
            "%s exited with code %s; restarting it in %gs",
            name,
            describe_exit(part.child.process.returncode),
            wait,
        )


def describe_exit(returncode: int | None) -> str:
    """`-9 (SIGKILL)` for a part killed by a signal, `75 (wedged producer)` for one that gave
    up on a hung transactional call (runtime/wedge.py), the plain code otherwise."""
    if returncode == WEDGED_EXIT_CODE:
        return f"{returncode} (wedged producer)"
    if returncode is None or returncode >= 0:
        return str(returncode)
    try:
        return f"{returncode} ({signal.Signals(-returncode).name})"
    except ValueError:
        return str(returncode)


def run_shop(
    settings: Settings,
    with_web: bool = True,
    instances: int = 1,
    nodes: int = 1,
    registry: bool = False,
) -> int:
    """Run until interrupted; the exit code is 0 after Ctrl-C, 1 if a part kept failing.

    `nodes` is the size of the local cluster started when no cluster is configured; its
    topics are then replicated to up to three of them. `registry`: with the local Schema
    Registry, started here (and stopped at the end) and given to every part."""
    started = contextlib.ExitStack()  # what is stopped at the end, last started first
    try:
        if settings.uses_local_broker:
            settings = _with_local_broker(settings, nodes, started)
        if registry:
            settings = _with_local_registry(settings, started)
        # Registers the contract's schemas: a registry that is away or refuses one is one line
        # now, not a failure in every part.
        use_schema_registry(settings)
        from pizzashop.kafka.topics import create_topics

        created = create_topics(settings)
        log.info("Topics ready: %s", ", ".join(created))
        if instances > settings.partitions:
            log.warning(
                "%d instances of each service share %d partitions: %d of them stand by "
                "(partitions are the ceiling on instances)",
                instances,
                settings.partitions,
                instances - settings.partitions,
            )
        return _supervise(settings, with_web, instances)
    finally:
        started.close()


def _with_local_broker(settings: Settings, nodes: int, started: contextlib.ExitStack) -> Settings:
    """The settings pointed at the local cluster, started now and stopped when `started` ends."""
    from pizzashop.kafka.cluster import start_local_kafka

    broker = start_local_kafka(settings, nodes=nodes)
    started.callback(_stop, "the local Kafka broker", broker.stop)
    return settings.replace(
        bootstrap_servers=broker.bootstrap_servers,
        replication_factor=max(settings.replication_factor, min(nodes, 3)),
    )


def _with_local_registry(settings: Settings, started: contextlib.ExitStack) -> Settings:
    """The settings pointed at the local Schema Registry, started now and stopped at the end."""
    from pizzashop.registry.local import start_local_registry

    local = start_local_registry(settings)
    started.callback(_stop, "the local Schema Registry", local.stop)
    log.info(
        "The Schema Registry is at %s; for the commands you run beside the shop: "
        "export PIZZASHOP_SCHEMA_REGISTRY_URL=%s",
        local.url,
        local.url,
    )
    return settings.replace(schema_registry_url=local.url)


def _stop(what: str, stop: Callable[[], object]) -> None:
    log.info("Stopping %s", what)
    stop()


def part_names(
    instances: int, with_web: bool, services: Iterable[str] = SERVICE_NAMES
) -> list[str]:
    """The parts `up` runs: each of `services` (and the web app) by its name, or, with more
    than one instance of each, `assemble-1`, `assemble-2`, ... `web-1`, `web-2`, ..."""
    kinds = [*services, *(["web"] if with_web else [])]
    if instances == 1:
        return kinds
    return [f"{kind}-{number}" for kind in kinds for number in range(1, instances + 1)]


def kind_of(part: str) -> str:
    """What a part runs: `bake-2` runs bake."""
    return part.partition("-")[0]


def start_part(name: str, settings: Settings, output: IO[bytes] | None = None) -> Child:
    """One service (or the web app) in its own process, configured by `settings`."""
    env = {**os.environ, **as_environment(settings)}
    command = [sys.executable, "-m", "pizzashop", *_command_for(name)]
    child = Child(
        name,
        subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT if output else None
        ),
    )
    log.info("Started %s (pid %d)", name, child.process.pid)
    return child


def _command_for(name: str) -> list[str]:
    kind = kind_of(name)
    return ["web"] if kind == "web" else ["service", kind]


def observe_ports(settings: Settings, names: list[str]) -> dict[str, int]:
    """A port for `up` itself and each service to show itself on: observe_port and the ports
    after it, or free ones when it is 0. A web process shows itself on its own port:
    web_port and the ports after it (free ones when it is 0)."""
    wanted = ["shop", *(name for name in names if kind_of(name) != "web")]
    if settings.observe_port:
        ports = {name: settings.observe_port + i for i, name in enumerate(wanted)}
    else:
        ports = {name: free_port(settings.observe_host) for name in wanted}
    web = [name for name in names if kind_of(name) == "web"]
    if settings.web_port:
        ports.update({name: settings.web_port + i for i, name in enumerate(web)})
    else:
        ports.update({name: free_port(settings.web_host) for name in web})
    return ports


def settings_of_part(settings: Settings, name: str, port: int) -> Settings:
    """A part's own settings: where it shows itself, and for a web process where it serves."""
    if kind_of(name) == "web":
        return settings.replace(web_port=port, observe_port=port)
    return settings.replace(observe_port=port)


def parts_file(settings: Settings) -> Path:
    """Where a running `up` says which parts it runs and where each shows itself."""
    return settings.state_dir / "shop.json"


def _announce(settings: Settings, ports: dict[str, int]) -> dict[str, str]:
    addresses = {
        name: f"http://{settings.web_host if kind_of(name) == 'web' else settings.observe_host}"
        f":{port}"
        for name, port in ports.items()
    }
    log.info("Health, readiness and metrics (/healthz, /readyz, /metrics) of each part:")
    for name, address in addresses.items():
        log.info("  %-9s %s", name, address)
    parts_file(settings).parent.mkdir(parents=True, exist_ok=True)
    parts_file(settings).write_text(json.dumps({"pid": os.getpid(), "parts": addresses}))
    return addresses


def _supervise(settings: Settings, with_web: bool, instances: int) -> int:
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    # Before the first start, so that a Ctrl-C while starting still stops what was started.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    names = part_names(instances, with_web, services_to_run(settings))
    if with_web:
        shop_secret(settings)  # made once here, not by several web processes at once
    ports = observe_ports(settings, names)
    supervisor = Supervisor(
        names, lambda name: start_part(name, settings_of_part(settings, name, ports[name]))
    )
    server = ObserveServer(
        settings.observe_host, ports["shop"], lambda: _shop_readiness(supervisor)
    ).start()
    addresses = _announce(settings, ports)
    web = [address for name, address in addresses.items() if kind_of(name) == "web"]
    exit_code = 0
    try:
        supervisor.start_all()
        for address in web:
            log.info("The shop is open at %s", address)
        if web and settings.admin_token:
            log.info("The pipeline page: %s/admin/pipeline?token=<PIZZASHOP_ADMIN_TOKEN>", web[0])
        while not stopping:
            if supervisor.look_after_parts() is not None:
                exit_code = 1
                break
            time.sleep(HEARTBEAT)  # a supervisor's heartbeat, not a wait for a condition
    finally:
        log.info("Stopping the shop")
        stop_parts(supervisor.children)
        server.close()
        parts_file(settings).unlink(missing_ok=True)
    return exit_code


def _shop_readiness(supervisor: Supervisor) -> Readiness:
    """The shop is ready while every part runs (each part's own readiness says the rest)."""
    waiting = supervisor.waiting()
    missing = [f"{name} exited; restarting in {left:.0f}s" for name, left in waiting.items()]
    return Readiness(not missing, missing, {"parts": sorted(supervisor.parts)})


def stop_parts(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", child.name)
            child.process.kill()
            child.process.wait()
