"""The embedded Apache Kafka: fetch the jars with Maven, format storage, start, stop.

The real broker, in KRaft mode (each node is broker and controller), run with `java` from
the Apache Kafka jars on Maven Central. The jars are cached outside the repository; each
node's data lives under the state folder, so a restart keeps the topics and offsets.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from pizzashop.config import Settings
from pizzashop.kafka.jars import JVM_OPTIONS, KafkaSetupError, java_command, kafka_jars
from pizzashop.kafka.node import (
    STOP_TIMEOUT,
    Node,
    log_options,
    node_properties,
    ports_in_use,
    reap,
    run_storage_tool,
    signal_group,
    wait_until_exec,
    wait_until_gone,
)
from pizzashop.kafka.secure import LISTENER, CertificatesNotMade, SecuredListener

log = logging.getLogger("pizzashop.kafka")

OFFSETS_TOPIC = "__consumer_offsets"


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
        cluster_id = run_storage_tool(java, jars, ["random-uuid"]).strip().splitlines()[-1]
        self.folder.mkdir(parents=True, exist_ok=True)
        layout_file.write_text(json.dumps({"nodes": len(self.nodes), "cluster_id": cluster_id}))
        return cluster_id

    def _prepare_secured_listener(self, secured: SecuredListener) -> None:
        try:
            secured.prepare(self.secure_bootstrap_servers)
        except CertificatesNotMade as e:
            raise KafkaSetupError(str(e)) from None

    def _check_ports(self, node: Node) -> None:
        in_use = ports_in_use(node, self.secured is not None)
        if in_use:
            raise KafkaSetupError(
                f"port {in_use[0]} on 127.0.0.1 is in use by another program: stop it, or choose "
                "other ports with PIZZASHOP_KAFKA_PORT, PIZZASHOP_KAFKA_CONTROLLER_PORT and "
                "PIZZASHOP_KAFKA_SECURE_PORT"
            )

    def _launch(self, node: Node, java: str, jars: Path, cluster_id: str) -> None:
        self._check_ports(node)
        (node.folder / "logs").mkdir(parents=True, exist_ok=True)
        properties = node_properties(node, self.nodes, self.settings.partitions, self.secured)
        node.properties_file.write_text(properties)
        if not (node.folder / "data" / "meta.properties").exists():
            run_storage_tool(
                java, jars, ["format", "-t", cluster_id, "-c", str(node.properties_file)], node
            )
        with node.console_file.open("ab") as console:
            process = subprocess.Popen(
                [
                    java,
                    *JVM_OPTIONS,
                    *log_options(node),
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
        wait_until_exec(process.pid, node.properties_file)
        node.pid_file.write_text(str(process.pid))
        log.info(
            "Started Apache Kafka %s node %d (pid %d) on %s",
            self.version,
            node.node_id,
            process.pid,
            node.address,
        )

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
        """A restarted node answers metadata before it coordinates the groups of each partition
        of __consumer_offsets (it must lead the partition, then load it); until then it refuses
        committed-offset requests (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS). So the very
        request is asked, for one probe group of each partition, until every one answers."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        while refused := _coordinators_not_ready(admin, self.bootstrap_servers):
            if time.monotonic() > deadline:
                raise KafkaSetupError(
                    f"Kafka did not load its consumer groups within "
                    f"{self.settings.kafka_start_timeout:g}s ({refused})"
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
            signal_group(pid, sig)

    def _wait_for_exit(self, node: Node) -> None:
        broker = node.pid()
        deadline = time.monotonic() + STOP_TIMEOUT
        while (pid := node.pid()) is not None:
            reap(pid)
            if time.monotonic() > deadline:
                log.warning(
                    "Kafka node %d did not stop in %gs; killing it", node.node_id, STOP_TIMEOUT
                )
                self._signal(node, signal.SIGKILL)
                deadline = time.monotonic() + STOP_TIMEOUT
            time.sleep(0.1)  # polling a process that is not our child for its exit
        if broker is not None:
            wait_until_gone(broker)
        node.pid_file.unlink(missing_ok=True)


def _coordinators_not_ready(admin: AdminClient, bootstrap_servers: str) -> str | None:
    """Why a committed-offset request would be refused now (None: every coordinator answers).
    Asked with a consumer's `committed`, as the shop asks it: the admin client's
    list_consumer_group_offsets crashed the process when asked while a node restarted."""
    loading = admin.list_consumer_groups(request_timeout=5).result().errors
    if loading:  # cheaper to ask first, and enough while a partition is still loading
        return str(loading[0])
    topic = admin.list_topics(OFFSETS_TOPIC, timeout=5).topics.get(OFFSETS_TOPIC)
    if topic is None or topic.error is not None:
        return None  # no group has committed yet: a new cluster makes the topic then
    for group in probe_groups(len(topic.partitions)):
        consumer = Consumer(
            {"bootstrap.servers": bootstrap_servers, "group.id": group, "log_level": 0}
        )
        try:
            consumer.committed([TopicPartition(OFFSETS_TOPIC, 0)], timeout=5)
        except KafkaException as e:
            return f"{group}: {e.args[0].str() if e.args else e}"
        finally:
            consumer.close()
    return None


def probe_groups(partitions: int) -> list[str]:
    """A group id for each partition of __consumer_offsets: the broker places a group on
    partition abs(Java's hashCode of its id) modulo their number."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        group = f"pizzashop-probe-{n}"
        found.setdefault(abs(_java_hash(group)) % partitions, group)
        n += 1
    return [found[p] for p in range(partitions)]


def _java_hash(text: str) -> int:
    """Java's String.hashCode, a signed 32-bit int."""
    h = 0
    for character in text:
        h = (31 * h + ord(character)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


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
