"""Two instances of each service, each a process of its own, for the chaos run to kill and pause.

They run under the same Supervisor as `pizzashop up`: an instance that exits is started again
after a moment. One the run killed itself is a fault; one that exits on its own is a finding.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from pizzashop.config import Settings
from pizzashop.local.shop import (
    Child,
    RestartPolicy,
    Supervisor,
    describe_exit,
    start_part,
    stop_parts,
)
from pizzashop.runtime.wedge import WEDGED_EXIT_CODE
from pizzashop.services import SERVICE_NAMES

log = logging.getLogger("pizzashop.chaos")

INSTANCES_PER_SERVICE = 2
INSTANCE_NAMES: tuple[str, ...] = tuple(
    f"{service}-{n}" for service in SERVICE_NAMES for n in range(1, INSTANCES_PER_SERVICE + 1)
)
# Killed instances come back after a second, as many times as the run kills them.
RESTART_AFTER_A_MOMENT = RestartPolicy(
    first_wait=1.0, longest_wait=1.0, exits_to_give_up=1_000_000, give_up_window=1.0
)


def service_of(instance: str) -> str:
    return instance.rpartition("-")[0]


class ServiceInstances:
    def __init__(self, settings: Settings, logs: Path) -> None:
        self._settings = settings
        self._logs = logs
        self._killed: set[int] = set()  # pids the run killed on purpose
        self._paused: set[str] = set()
        self.unexpected_exits: list[str] = []
        self.wedged_restarts: list[str] = []  # instances that exited with WEDGED_EXIT_CODE
        self._supervisor = Supervisor(INSTANCE_NAMES, self._start, policy=RESTART_AFTER_A_MOMENT)

    def start_all(self) -> None:
        self._logs.mkdir(parents=True, exist_ok=True)
        self._supervisor.start_all()

    def _start(self, instance: str) -> Child:
        with (self._logs / f"{instance}.log").open("ab") as output:
            started = start_part(service_of(instance), self._settings, output)
        return Child(instance, started.process)

    def look_after(self) -> None:
        """Note exits the run did not cause, and restart every instance that exited."""
        for name, part in self._supervisor.parts.items():
            process = part.child.process
            if part.restart_at is None and process.poll() is not None:
                if process.returncode == WEDGED_EXIT_CODE:
                    # The guard against librdkafka's hang asked for this restart: a
                    # recovery to count and show, not a crash (runtime/wedge.py).
                    self.wedged_restarts.append(name)
                    log.warning("%s exited as a wedged producer; restarting it", name)
                elif process.pid not in self._killed:
                    exit_line = f"{name} (pid {process.pid}) exited on its own with code "
                    self.unexpected_exits.append(exit_line + describe_exit(process.returncode))
                    log.error("%s", self.unexpected_exits[-1])
                self._killed.discard(process.pid)
        self._supervisor.look_after_parts()

    def is_up(self, instance: str) -> bool:
        part = self._supervisor.parts[instance]
        return (
            part.restart_at is None
            and part.child.process.poll() is None
            and instance not in self._paused
        )

    def kill(self, instance: str) -> None:
        process = self._supervisor.parts[instance].child.process
        self._killed.add(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def pause(self, instance: str) -> None:
        self._paused.add(instance)
        self._supervisor.parts[instance].child.process.send_signal(signal.SIGSTOP)

    def resume(self, instance: str) -> None:
        self._supervisor.parts[instance].child.process.send_signal(signal.SIGCONT)
        self._paused.discard(instance)

    def stop_all(self) -> None:
        for instance in list(self._paused):
            self.resume(instance)
        stop_parts(self._supervisor.children)
