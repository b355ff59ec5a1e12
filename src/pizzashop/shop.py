"""`pizzashop up`: the whole shop in the foreground, each service in its own process.

It starts the local broker when no cluster is configured, creates the topics, starts the
four services and the web app, and on Ctrl-C (or SIGTERM) stops them all, then the broker.
A service that exits on its own is reported and the shop is stopped: nothing is restarted
silently, and a shop missing a service would only pile up work.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import IO

from pizzashop.config import Settings, as_environment
from pizzashop.services import SERVICE_NAMES

log = logging.getLogger("pizzashop.shop")

STOP_TIMEOUT = 20.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def run_shop(settings: Settings, with_web: bool = True) -> int:
    """Run until interrupted; the exit code is 0 after Ctrl-C, 1 if a part failed."""
    broker = None
    if settings.uses_local_broker:
        from pizzashop.kafka_local import start_local_kafka

        broker = start_local_kafka(settings)
        bootstrap = broker.bootstrap_servers
    else:
        bootstrap = settings.bootstrap_servers or ""
    try:
        from pizzashop.topics import create_topics

        created = create_topics(settings, bootstrap_servers=bootstrap)
        log.info("Topics ready: %s", ", ".join(created))
        return _supervise(_start_children(settings, bootstrap, with_web))
    finally:
        if broker is not None:
            log.info("Stopping the local Kafka broker")
            broker.stop()


def _start_children(settings: Settings, bootstrap: str, with_web: bool) -> list[Child]:
    settings = settings.replace(bootstrap_servers=bootstrap)
    names = [*SERVICE_NAMES, *(["web"] if with_web else [])]
    children = [start_part(name, settings) for name in names]
    if with_web:
        log.info("The shop is open at http://%s:%d", settings.web_host, settings.web_port)
    return children


def start_part(name: str, settings: Settings, output: IO[bytes] | None = None) -> Child:
    """One service (or the web app) in its own process, configured by `settings`."""
    env = {**os.environ, **as_environment(settings)}
    command = [sys.executable, "-m", "pizzashop", *_command_for(name)]
    child = Child(name, subprocess.Popen(command, env=env, stdout=output,
                                         stderr=subprocess.STDOUT if output else None))
    log.info("Started %s (pid %d)", name, child.process.pid)
    return child


def _command_for(name: str) -> list[str]:
    return ["web"] if name == "web" else ["service", name]


def _supervise(children: list[Child]) -> int:
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping:
        failed = [c for c in children if c.process.poll() is not None]
        if failed:
            for child in failed:
                log.error("%s exited with code %s; stopping the shop", child.name, child.process.returncode)
            exit_code = 1
            break
        time.sleep(0.2)  # a supervisor's heartbeat, not a wait for a condition
    log.info("Stopping the shop")
    stop_parts(children)
    return exit_code


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
