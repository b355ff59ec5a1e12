"""The pipelines the bench runs beside the shop: the bare chain and the shop's peers.

Each runs the reference chain's four hops (ordered -> assembled -> baked -> status ->
delivered) over topics of its own, every hop a process of its own as the shop's services are;
they differ only in what a hop is: the runtime's own pass-through (`hop`), a Quix Streams
application (`quix_hop`) or a Kafka Streams application (streams/StreamsHop.java).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config

# (settings, hop name, source topic, target topic) -> the command that runs the hop
HopCommand = Callable[[Settings, str, str, str], list[str]]

STREAMS_HOP_SOURCE = Path(__file__).parent / "streams" / "StreamsHop.java"
STREAMS_GUARANTEES = {"exactly_once": "exactly_once_v2", "at_least_once": "at_least_once"}


class PipelineUnavailable(RuntimeError):
    """A pipeline cannot run in this setting; the message says why."""


@dataclass(frozen=True)
class Pipeline:
    name: str  # in the report, and as --peer names it
    label: str  # in the names of its topics and groups
    hop_command: HopCommand


def reference_hop(settings: Settings, name: str, source: str, target: str) -> list[str]:
    return [sys.executable, "-m", "pizzashop.bench.hop", name, source, target]


def quix_hop(settings: Settings, name: str, source: str, target: str) -> list[str]:
    if importlib.util.find_spec("quixstreams") is None:
        raise PipelineUnavailable("--peer quix needs Quix Streams: pip install 'pizzashop[bench]'")
    group = contract.group_id(name)
    return [sys.executable, "-m", "pizzashop.bench.quix_hop", group, source, target]


def streams_hop(settings: Settings, name: str, source: str, target: str) -> list[str]:
    from pizzashop.kafka.jars import java_command

    if settings.kafka_properties_file is not None:
        # Its librdkafka settings do not translate one to one into the Java client's.
        raise PipelineUnavailable("--peer streams runs on a cluster without a properties file")
    jars, classes = _streams_hop_classes(settings)
    return [
        java_command(),
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-cp",
        f"{jars}/*:{classes}",
        "StreamsHop",
        kafka_client_config(settings)["bootstrap.servers"],
        contract.group_id(name),  # the application id is the group's id
        source,
        target,
        STREAMS_GUARANTEES[settings.processing_guarantee],
        str(settings.state_dir / "streams" / name),
    ]


def _streams_hop_classes(settings: Settings) -> tuple[Path, Path]:
    """The Kafka Streams jars (fetched by Maven like the broker's) and StreamsHop compiled
    against them once, not by every hop's JVM as it starts."""
    from pizzashop.kafka.jars import KafkaSetupError, fetched_jars

    jars = fetched_jars(
        settings,
        "bench/streams/pom.xml",
        f"kafka-streams-{settings.kafka_version}",
        f"Kafka Streams {settings.kafka_version}",
    )
    source = STREAMS_HOP_SOURCE.read_bytes()
    classes = jars / f"streams-hop-{hashlib.sha256(source).hexdigest()[:12]}"
    if not (classes / "StreamsHop.class").exists():
        if shutil.which("javac") is None:
            raise PipelineUnavailable("--peer streams needs javac: install a JDK 17 or newer")
        result = subprocess.run(
            ["javac", "-cp", f"{jars}/*", "-d", str(classes), str(STREAMS_HOP_SOURCE)],
            capture_output=True,
            text=True,
            check=False,  # reported below
        )
        if result.returncode != 0:
            raise KafkaSetupError(f"javac could not compile StreamsHop:\n{result.stderr}")
    return jars, classes


REFERENCE = Pipeline("reference", "ref", reference_hop)
PEERS = {
    p.name: p for p in (Pipeline("quix", "quix", quix_hop), Pipeline("streams", "ks", streams_hop))
}
