"""One local KRaft node: its files, its server.properties, its process and its ports."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pizzashop.kafka.jars import LOG_TAIL_LINES, KafkaSetupError
from pizzashop.kafka.secure import LISTENER, SecuredListener
from pizzashop.local.ports import can_listen_on

STOP_TIMEOUT = 30.0
EXEC_TIMEOUT = 5.0


@dataclass(frozen=True)
class Node:
    node_id: int
    port: int
    controller_port: int
    secure_port: int  # the SASL_SSL listener's, when the cluster is started secured
    folder: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_address(self) -> str:
        return f"127.0.0.1:{self.secure_port}"

    @property
    def properties_file(self) -> Path:
        return self.folder / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.folder / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "logs" / "server.log"

    @property
    def console_file(self) -> Path:
        return self.folder / "logs" / "console.log"

    def recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def pid(self) -> int | None:
        """The pid of this node's broker if it runs."""
        pid = self.recorded_pid()
        return pid if pid is not None and is_broker_process(pid, self.properties_file) else None

    def log_tail(self) -> str:
        found = tail_of(self.log_file) or tail_of(self.console_file)
        return found or f"(no log in {self.folder / 'logs'})"


def tail_of(log_file: Path) -> str | None:
    """The last lines of a JVM's log, to show why it did not start (None: no lines there)."""
    if not log_file.exists():
        return None
    lines = log_file.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return f"last lines of {log_file}:\n" + "\n".join(lines) if lines else None


# Under the consumer group protocol (KIP-848) the broker holds the session: as for the classic
# one (runtime/clients.py), a killed member's partitions move after 10 s, and members heartbeat
# every second (the defaults are 45 s and 5 s).
GROUP_TIMINGS: dict[str, object] = {
    "group.initial.rebalance.delay.ms": 0,
    "group.consumer.min.session.timeout.ms": 10_000,
    "group.consumer.session.timeout.ms": 10_000,
    "group.consumer.min.heartbeat.interval.ms": 1_000,
    "group.consumer.heartbeat.interval.ms": 1_000,
}
HOUSEKEEPING: dict[str, object] = {
    # The log cleaner keeps this buffer on the heap for as long as the broker runs: the
    # default 128 MB, on a 256 MB heap, made G1 run a marking cycle and a remark pause
    # every two seconds at 200 orders/s. 16 MB still dedupes about 600,000 keys per pass
    # of the compacted topics (offsets, delivery's changelog).
    "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
    "auto.create.topics.enable": "false",
    "controlled.shutdown.enable": "true",
}
# In a cluster, a killed node is fenced and its partitions led elsewhere within seconds
# (default 9 s).
FAST_FENCING: dict[str, object] = {
    "broker.session.timeout.ms": 3000,
    "broker.heartbeat.interval.ms": 500,
}


def node_properties(
    node: Node, nodes: list[Node], partitions: int, secured: SecuredListener | None
) -> str:
    """The server.properties of one KRaft node (broker and controller) of `nodes`."""
    properties: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": ",".join(
            f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes
        ),
        **_plain_listener_properties(node),
        "log.dirs": node.folder / "data",
        "num.partitions": partitions,
        **_replication_properties(len(nodes)),
        **GROUP_TIMINGS,
        **HOUSEKEEPING,
    }
    if secured is not None:
        properties.update(_secured_listener_properties(node, secured))
    if len(nodes) > 1:
        properties.update(FAST_FENCING)
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def _plain_listener_properties(node: Node) -> dict[str, object]:
    return {
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    }


def _replication_properties(nodes: int) -> dict[str, object]:
    """Each partition on every node; from three nodes on, a write needs two copies in sync."""
    min_isr = 2 if nodes >= 3 else 1
    return {
        "default.replication.factor": nodes,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": nodes,
        "offsets.topic.num.partitions": 10,
        "transaction.state.log.replication.factor": nodes,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 10,
    }


def _secured_listener_properties(node: Node, secured: SecuredListener) -> dict[str, object]:
    """The plain listeners with the secured one added; controller and inter-broker traffic
    stay on plain listeners of 127.0.0.1, so only clients authenticate."""
    listener = f"{LISTENER}://{node.secure_address}"
    return {
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},{listener},"
        f"CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port},{listener}",
        "listener.security.protocol.map": (
            f"CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,{LISTENER}:{LISTENER}"
        ),
        **secured.broker_settings(),
    }


def log_options(node: Node) -> list[str]:
    config = resources.files("pizzashop") / "kafka" / "log4j2.properties"
    return [f"-Dlog4j2.configurationFile={config}", f"-Dkafka.logs.dir={node.folder / 'logs'}"]


def run_storage_tool(java: str, jars: Path, arguments: list[str], node: Node | None = None) -> str:
    logging = log_options(node) if node else ["-Dlog4j2.level=error"]
    result = subprocess.run(
        [java, *logging, "-cp", f"{jars}/*", "kafka.tools.StorageTool", *arguments],
        capture_output=True,
        text=True,
        check=False,  # the return code is reported below
    )
    if result.returncode != 0:
        raise KafkaSetupError(
            f"kafka-storage {arguments[0]} failed:\n{result.stdout}{result.stderr}"
        )
    return result.stdout


# --- the process -------------------------------------------------------------------------------


def is_broker_process(pid: int, properties_file: Path) -> bool:
    """Whether `pid` is a Kafka broker running from this node's properties (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(properties_file).encode() in cmdline


def wait_until_exec(pid: int, properties_file: Path) -> None:
    """Until the new process shows the broker's command line.

    Right after the fork its command line is briefly empty; a pid file written then would make
    the node look stopped, and a stop would leave the broker running.
    """
    deadline = time.monotonic() + EXEC_TIMEOUT
    while not is_broker_process(pid, properties_file) and time.monotonic() < deadline:
        time.sleep(0.01)


def ports_in_use(node: Node, secure: bool) -> list[int]:
    return [port for port in _ports_of(node, secure) if not can_listen_on(port)]


def _ports_of(node: Node, secure: bool) -> tuple[int, ...]:
    return (node.port, node.controller_port, *((node.secure_port,) if secure else ()))


def wait_until_gone(pid: int) -> None:
    """A broker whose command line has vanished may still be exiting, its threads closing files
    and ports: wait until it is done, so no java process outlives a stop."""
    deadline = time.monotonic() + STOP_TIMEOUT
    while not _has_exited(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _has_exited(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid  # our own child: reaped, so it is no zombie either
    except ChildProcessError:
        pass
    # Another process's child: done once every thread is a zombie awaiting its parent.
    try:
        threads = [Path(task, "stat").read_text() for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return True
    return all(stat.rpartition(")")[2].split()[0] in ("Z", "X") for stat in threads)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal a JVM started in a session of its own, with every process of it (gone: nothing)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def reap(pid: int) -> None:
    """Collect the exit status when the broker is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
