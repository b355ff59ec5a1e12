"""The Apache Kafka jars, fetched from Maven Central into the cache once, and the JVM that
runs them."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from pizzashop.config import Settings

log = logging.getLogger("pizzashop.kafka")

LOG_TAIL_LINES = 20
MAVEN_NOTES = ".maven-markers"  # what Maven notes of the archives it unpacked, while it fetches
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


def kafka_jars(settings: Settings) -> Path:
    """The folder with the broker's jars, fetched by Maven on first use."""
    return fetched_jars(
        settings,
        "kafka/pom.xml",
        f"kafka-{settings.kafka_version}",
        f"Apache Kafka {settings.kafka_version}",
    )


def fetched_jars(
    settings: Settings, pom_resource: str, folder_name: str, what: str, unpack: bool = False
) -> Path:
    """The jars a pom (a resource of this package) names, fetched by Maven into the cache once,
    at the broker's Kafka version; `unpack`: the archives it names, unpacked."""
    folder = settings.cache_dir / folder_name
    if (folder / ".complete").exists():
        return folder
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError(
            f"mvn not found: install Maven (Debian: apt-get install maven) to fetch {what}, "
            "or point the shop at a running cluster with PIZZASHOP_BOOTSTRAP_SERVERS"
        )
    log.info("Fetching %s from Maven Central into %s", what, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Fetch next to the final folder, then rename: an interrupted fetch is never taken as complete.
    staging = Path(tempfile.mkdtemp(prefix=f"{folder_name}-", dir=folder.parent))
    goal = "unpack-dependencies" if unpack else "copy-dependencies"
    result = _fetch_dependencies(mvn, pom_resource, goal, staging, settings.kafka_version)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        output = (result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:]
        raise KafkaSetupError(f"Maven could not fetch {what}:\n" + "\n".join(output))
    shutil.rmtree(staging / MAVEN_NOTES, ignore_errors=True)
    (staging / ".complete").touch()
    if (folder / ".complete").exists():  # another process fetched them meanwhile
        shutil.rmtree(staging, ignore_errors=True)
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def _fetch_dependencies(
    mvn: str, pom_resource: str, goal: str, into: Path, kafka_version: str
) -> subprocess.CompletedProcess[str]:
    pom = resources.files("pizzashop").joinpath(pom_resource)
    with resources.as_file(pom) as pom_path:
        return subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom_path),
                f"dependency:{goal}",
                f"-DoutputDirectory={into}",
                # Its notes of what it unpacked, in the fetch's own folder: by default they go
                # beside the pom, in the installed package, and a note left there would skip
                # the unpacking of a later fetch into an empty cache.
                f"-DmarkersDirectory={into / MAVEN_NOTES}",
                f"-Dkafka.version={kafka_version}",
            ],
            capture_output=True,
            text=True,
            check=False,  # the caller reports the return code
        )


def java_command() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaSetupError(
            "java not found: install Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless), "
            "or point the shop at a running cluster with PIZZASHOP_BOOTSTRAP_SERVERS"
        )
    return java
