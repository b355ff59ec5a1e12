"""The embedded Apache Kafka: fetch the jars with Maven, format storage, start, stop.

The real broker, in KRaft mode (each node is broker and controller), run with `java` from
the Apache Kafka jars on Maven Central. The jars are cached outside the repository; each
node's data lives under the state folder, so a restart keeps the topics and offsets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pizzashop.config import Settings
from pizzashop.kafka_secure import LISTENER, CertificatesNotMade, SecuredListener

log = logging.getLogger("pizzashop.kafka")

STOP_TIMEOUT = 30.0
EXEC_TIMEOUT = 5.0
LOG_TAIL_LINES = 20
JVM_OPTIONS = [
    # Started at 256 MB, the heap grew during the broker's first rush, which paid for the
    # garbage collection that took: the bench's bare chain of four hops, which runs first,
    # did 6,800-8,700 orders/s; with a 512 MB start, 11,250-11,800.
    "-Xms512m",
    "-Xmx768m",
    # Kafka's own start script's garbage collection (kafka-run-class.sh): G1 aiming at 20 ms
    # pauses, where the default aim of 200 ms would put long pauses into orders' latency.
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    # The local broker lives for a session, on a few cores shared with the shop. In its first
    # minutes the optimising compiler (C2) took over a third of its CPU; with the quick compiler
    # alone, a rush of 20,000 orders cost the broker 3.3 CPU seconds instead of 5.3.
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
]


class KafkaSetupError(RuntimeError):
    """The local broker cannot be fetched or started; the message says what to do."""


# --- the jars ----------------------------------------------------------------------------------


def kafka_jars(settings: Settings) -> Path:
    """The folder with the broker's jars, fetched by Maven on first use."""
    return fetched_jars(
        settings, "kafka/pom.xml", f"kafka-{settings.kafka_version}", "Apache Kafka"
    )


def fetched_jars(settings: Settings, pom_resource: str, folder_name: str, what: str) -> Path:
    """The jars a pom (a resource of this package) names, fetched by Maven into the cache once,
    at the broker's Kafka version."""
    folder = settings.cache_dir / folder_name
    if (folder / ".complete").exists():
        return folder
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError(
            f"mvn not found: install Maven (Debian: apt-get install maven) to fetch {what}, "
            "or point the shop at a running cluster with PIZZASHOP_BOOTSTRAP_SERVERS"
        )
    log.info("Fetching %s %s from Maven Central into %s", what, settings.kafka_version, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Fetch next to the final folder, then rename: an interrupted fetch is never taken as complete.
    staging = Path(tempfile.mkdtemp(prefix=f"{folder_name}-", dir=folder.parent))
    pom = resources.files("pizzashop").joinpath(pom_resource)
    with resources.as_file(pom) as pom_path:
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom_path),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                f"-Dkafka.version={settings.kafka_version}",
            ],
            capture_output=True,
            text=True,
            check=False,  # the return code is reported below
        )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        output = (result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise KafkaSetupError(
            f"Maven could not fetch {what} {settings.kafka_version}:\n" + "\n".join(output)
        )
    (staging / ".complete").touch()
    if (folder / ".complete").exists():  # another process fetched them meanwhile
        shutil.rmtree(staging, ignore_errors=True)
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def java_command() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaSetupError(
            "java not found: install Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless), "
            "or point the shop at a running cluster with PIZZASHOP_BOOTSTRAP_SERVERS"
        )
    return java


# --- nodes -------------------------------------------------------------------------------------


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
        return pid if pid is not None and _is_broker_process(pid, self.properties_file) else None

    def log_tail(self) -> str:
        for path in (self.log_file, self.console_file):
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                if lines:
                    return f"last lines of {path}:\n" + "\n".join(lines)
        return f"(no log in {self.folder / 'logs'})"


def _is_broker_process(pid: int, properties_file: Path) -> bool:
    """Whether `pid` is a Kafka broker running from this node's properties (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(properties_file).encode() in cmdline


def _wait_until_exec(pid: int, properties_file: Path) -> None:
    """Until the new process shows the broker's command line.

    Right after the fork its command line is briefly empty; a pid file written then would make
    the node look stopped, and a stop would leave the broker running.
    """
    deadline = time.monotonic() + EXEC_TIMEOUT
    while not _is_broker_process(pid, properties_file) and time.monotonic() < deadline:
        time.sleep(0.01)


def _ports_in_use(node: Node, secure: bool) -> list[int]:
    return [port for port in _ports_of(node, secure) if not _port_is_free(port)]


def _ports_of(node: Node, secure: bool) -> tuple[int, ...]:
    return (node.port, node.controller_port, *((node.secure_port,) if secure else ()))


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- the cluster -------------------------------------------------------------------------------


class LocalKafka:
    """One or more local KRaft nodes under `settings.state_dir / "kafka"`."""

    def __init__(self, settings: Settings, nodes: int = 1, secure: bool = False) -> None:
        self.settings = settings
        self.version = settings.kafka_version
        self.folder = settings.state_dir.resolve() / "kafka"
        self.nodes = [
            Node(
                i,
                settings.kafka_port + 2 * i,
                settings.kafka_controller_port + 2 * i,
                settings.kafka_secure_port + 2 * i,
                self.folder / f"node-{i}",
            )
            for i in range(nodes)
        ]
        # Besides the plain listener, not instead: the shop's own tools and tests keep it.
        self.secured = SecuredListener(self.folder / "secure") if secure else None

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def secure_bootstrap_servers(self) -> str:
        return ",".join(node.secure_address for node in self.nodes)

    @property
    def client_properties_file(self) -> Path | None:
        """The properties file that reaches the secured listener (None: started without it)."""
        return None if self.secured is None else self.secured.client_properties_file

    def is_running(self) -> bool:
        return all(node.pid() is not None for node in self.nodes)

    # --- starting ------------------------------------------------------------------------

    def start(self) -> None:
        stopped = [node for node in self.nodes if node.pid() is None]
        for node in stopped:
            self._check_ports(node)
        java = java_command()
        jars = kafka_jars(self.settings)
        cluster_id = self._cluster_id(java, jars)
        if self.secured is not None and stopped:
            self._prepare_secured_listener(self.secured)
        try:
            # Formatting and starting a JVM take a second or two per node: side by side, not in turn.
            with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
                list(pool.map(lambda node: self._launch(node, java, jars, cluster_id), stopped))
            self.wait_until_ready()
        except KafkaSetupError:
            self.stop()  # leave no broker behind that the user did not get
            raise

    def _cluster_id(self, java: str, jars: Path) -> str:
        layout_file = self.folder / "cluster.json"
        if layout_file.exists():
            layout = json.loads(layout_file.read_text())
            if layout["nodes"] != len(self.nodes):
                raise KafkaSetupError(
                    f"{self.folder} holds a {layout['nodes']}-node cluster; start it with "
                    f"--nodes {layout['nodes']} or use another PIZZASHOP_STATE_DIR"
                )
            return str(layout["cluster_id"])
        cluster_id = self._run_tool(java, jars, ["random-uuid"]).strip().splitlines()[-1]
        self.folder.mkdir(parents=True, exist_ok=True)
        layout_file.write_text(json.dumps({"nodes": len(self.nodes), "cluster_id": cluster_id}))
        return cluster_id

    def _prepare_secured_listener(self, secured: SecuredListener) -> None:
        try:
            secured.prepare(self.secure_bootstrap_servers)
        except CertificatesNotMade as e:
            raise KafkaSetupError(str(e)) from None

    def _check_ports(self, node: Node) -> None:
        in_use = _ports_in_use(node, self.secured is not None)
        if in_use:
            raise KafkaSetupError(
                f"port {in_use[0]} on 127.0.0.1 is in use by another program: stop it, or choose "
                "other ports with PIZZASHOP_KAFKA_PORT, PIZZASHOP_KAFKA_CONTROLLER_PORT and "
                "PIZZASHOP_KAFKA_SECURE_PORT"
            )

    def _launch(self, node: Node, java: str, jars: Path, cluster_id: str) -> None:
        self._check_ports(node)
        (node.folder / "logs").mkdir(parents=True, exist_ok=True)
        node.properties_file.write_text(self._properties(node))
        if not (node.folder / "data" / "meta.properties").exists():
            self._run_tool(
                java, jars, ["format", "-t", cluster_id, "-c", str(node.properties_file)], node
            )
        with node.console_file.open("ab") as console:
            process = subprocess.Popen(
                [
                    java,
                    *JVM_OPTIONS,
                    *self._log_options(node),
                    "-cp",
                    f"{jars}/*",
                    "kafka.Kafka",
                    str(node.properties_file),
                ],
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal is the shop's to handle, not Kafka's
            )
        _wait_until_exec(process.pid, node.properties_file)
        node.pid_file.write_text(str(process.pid))
        log.info(
            "Started Apache Kafka %s node %d (pid %d) on %s",
            self.version,
            node.node_id,
            process.pid,
            node.address,
        )

    def _properties(self, node: Node) -> str:
        count = len(self.nodes)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        min_isr = 2 if count >= 3 else 1
        settings = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": node.folder / "data",
            "num.partitions": self.settings.partitions,
            "default.replication.factor": count,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": count,
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": count,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": 10,
            "group.initial.rebalance.delay.ms": 0,
            # Under the consumer group protocol (KIP-848) the broker holds the session: as for
            # the classic one (runtime/clients.py), a killed member's partitions move after
            # 10 s, and members heartbeat every second (the defaults are 45 s and 5 s).
            "group.consumer.min.session.timeout.ms": 10_000,
            "group.consumer.session.timeout.ms": 10_000,
            "group.consumer.min.heartbeat.interval.ms": 1_000,
            "group.consumer.heartbeat.interval.ms": 1_000,
            # The log cleaner keeps this buffer on the heap for as long as the broker runs: the
            # default 128 MB, on a 256 MB heap, made G1 run a marking cycle and a remark pause
            # every two seconds at 200 orders/s. 16 MB still dedupes about 600,000 keys per pass
            # of the compacted topics (offsets, delivery's changelog).
            "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
            "auto.create.topics.enable": "false",
            "controlled.shutdown.enable": "true",
        }
        if self.secured is not None:
            settings.update(self._secured_listener_properties(node, self.secured))
        if count > 1:
            # A killed node is fenced and its partitions led elsewhere within seconds (default 9 s).
            settings["broker.session.timeout.ms"] = 3000
            settings["broker.heartbeat.interval.ms"] = 500
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _secured_listener_properties(
        self, node: Node, secured: SecuredListener
    ) -> dict[str, object]:
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

    def _log_options(self, node: Node) -> list[str]:
        config = resources.files("pizzashop") / "kafka" / "log4j2.properties"
        return [f"-Dlog4j2.configurationFile={config}", f"-Dkafka.logs.dir={node.folder / 'logs'}"]

    def _run_tool(
        self, java: str, jars: Path, arguments: list[str], node: Node | None = None
    ) -> str:
        log_options = self._log_options(node) if node else ["-Dlog4j2.level=error"]
        result = subprocess.run(
            [java, *log_options, "-cp", f"{jars}/*", "kafka.tools.StorageTool", *arguments],
            capture_output=True,
            text=True,
            check=False,  # the return code is reported below
        )
        if result.returncode != 0:
            raise KafkaSetupError(
                f"kafka-storage {arguments[0]} failed:\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def wait_until_ready(self) -> None:
        """Until every node answers a metadata request and has loaded its groups' offsets, or a
        clear error with the log's tail."""
        deadline = time.monotonic() + self.settings.kafka_start_timeout
        for node in self.nodes:
            self._wait_for_answer(node, {"bootstrap.servers": node.address}, deadline)
            if self.secured is not None:
                secured = {**self.secured.client_config(), "bootstrap.servers": node.secure_address}
                self._wait_for_answer(node, secured, deadline)
        self._wait_for_group_coordinators(deadline)

    def _wait_for_group_coordinators(self, deadline: float) -> None:
        """A restarted node answers metadata before it has loaded __consumer_offsets; until then
        it refuses committed-offset requests (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        while errors := admin.list_consumer_groups(request_timeout=5).result().errors:
            if time.monotonic() > deadline:
                raise KafkaSetupError(
                    f"Kafka did not load its consumer groups within "
                    f"{self.settings.kafka_start_timeout:g}s ({errors[0]})"
                )
            time.sleep(0.1)  # the broker gives no event for this; ask again shortly

    def _wait_for_answer(self, node: Node, client: dict[str, str], deadline: float) -> None:
        admin = AdminClient({**client, "log_level": 0})
        while True:
            if node.pid() is None:
                raise KafkaSetupError(
                    f"Kafka node {node.node_id} exited while starting; {node.log_tail()}"
                )
            try:
                admin.list_topics(timeout=1.0)
                return
            except KafkaException as e:  # not answering yet
                if time.monotonic() > deadline:
                    raise KafkaSetupError(
                        f"Kafka node {node.node_id} did not answer on {client['bootstrap.servers']} "
                        f"within {self.settings.kafka_start_timeout:g}s ({e}); {node.log_tail()}"
                    ) from None

    # --- stopping ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every node gracefully (controlled shutdown); kill what does not stop in time."""
        for node in self.nodes:
            self._signal(node, signal.SIGTERM)
        for node in self.nodes:
            self._wait_for_exit(node)

    def kill_node(self, index: int) -> None:
        """Kill one node at once, as a crash would (for fault tests)."""
        node = self.nodes[index]
        self._signal(node, signal.SIGKILL)
        self._wait_for_exit(node)

    def stop_node(self, index: int) -> None:
        node = self.nodes[index]
        self._signal(node, signal.SIGTERM)
        self._wait_for_exit(node)

    def start_node(self, index: int) -> None:
        java, jars = java_command(), kafka_jars(self.settings)
        node = self.nodes[index]
        if node.pid() is None:
            self._launch(node, java, jars, self._cluster_id(java, jars))
        self.wait_until_ready()

    def _signal(self, node: Node, sig: signal.Signals) -> None:
        pid = node.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)

    def _wait_for_exit(self, node: Node) -> None:
        broker = node.pid()
        deadline = time.monotonic() + STOP_TIMEOUT
        while (pid := node.pid()) is not None:
            _reap(pid)
            if time.monotonic() > deadline:
                log.warning(
                    "Kafka node %d did not stop in %gs; killing it", node.node_id, STOP_TIMEOUT
                )
                self._signal(node, signal.SIGKILL)
                deadline = time.monotonic() + STOP_TIMEOUT
            time.sleep(0.1)  # polling a process that is not our child for its exit
        if broker is not None:
            _wait_until_gone(broker)
        node.pid_file.unlink(missing_ok=True)


def _wait_until_gone(pid: int) -> None:
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


def _reap(pid: int) -> None:
    """Collect the exit status when the broker is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# --- the API the CLI and the tests use ---------------------------------------------------------


def start_local_kafka(settings: Settings, nodes: int = 1, secure: bool = False) -> LocalKafka:
    """Start (or find running) the local broker(s) of this state folder; `secure` adds a
    SASL_SSL listener, reached through `client_properties_file`.

    A cluster already running there is used as it is, whatever its number of nodes.
    """
    running = running_local_kafka(settings)
    if running is not None and running.is_running():
        if secure and running.secured is None:
            raise KafkaSetupError(
                "the local broker runs without its secured listener: stop it "
                "(pizzashop kafka stop), then start it again with --secure"
            )
        log.info("Apache Kafka is already running on %s", running.bootstrap_servers)
        running.wait_until_ready()
        return running
    kafka = LocalKafka(settings, nodes, secure)
    kafka.start()
    return kafka


def running_local_kafka(settings: Settings) -> LocalKafka | None:
    """The local cluster of this state folder, if it has been set up, secured as last started."""
    layout_file = settings.state_dir / "kafka" / "cluster.json"
    if not layout_file.exists():
        return None
    kafka = LocalKafka(settings, json.loads(layout_file.read_text())["nodes"])
    if _was_started_secured(kafka.nodes[0]):
        kafka = LocalKafka(settings, len(kafka.nodes), secure=True)
    return kafka


def _was_started_secured(node: Node) -> bool:
    try:
        return f"{LISTENER}://" in node.properties_file.read_text()
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    address: str
    pid: int | None  # None: not running


@dataclass(frozen=True)
class KafkaStatus:
    version: str
    bootstrap_servers: str
    nodes: tuple[NodeStatus, ...]  # empty: no local broker was ever set up in this state folder

    @property
    def running(self) -> bool:
        return bool(self.nodes) and all(node.pid is not None for node in self.nodes)


def local_kafka_status(settings: Settings) -> KafkaStatus:
    """Whether the local broker of this state folder runs, with each node's pid and address."""
    kafka = running_local_kafka(settings)
    if kafka is None:
        return KafkaStatus(settings.kafka_version, settings.local_bootstrap_servers, ())
    nodes = tuple(NodeStatus(n.node_id, n.address, n.pid()) for n in kafka.nodes)
    return KafkaStatus(kafka.version, kafka.bootstrap_servers, nodes)
