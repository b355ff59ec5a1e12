"""The local Schema Registry: Apicurio Registry, fetched by Maven into the cache once (beside
the Kafka jars) and run with the broker's Java on 127.0.0.1, for `pizzashop registry` and
`pizzashop up --registry`.

Its schemas live in an H2 file under the state folder, so a restart keeps every id that
records already name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pizzashop.config import Settings
from pizzashop.kafka.jars import KafkaSetupError, fetched_jars, java_command
from pizzashop.kafka.node import signal_group, tail_of
from pizzashop.local.ports import can_listen_on

APICURIO_VERSION = "2.6.13.Final"  # as registry/pom.xml says
CONFLUENT_API = "/apis/ccompat/v7"
JVM_OPTIONS = ["-Xms64m", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
EXEC_TIMEOUT = 5.0
# The marker on the command line that tells this folder's registry from any other java.
FOLDER_PROPERTY = "pizzashop.registry.folder"


@dataclass(frozen=True)
class LocalRegistry:
    """The registry of one state folder: `settings.state_dir / "registry"`."""

    folder: Path
    port: int

    @classmethod
    def of(cls, settings: Settings) -> LocalRegistry:
        return cls(settings.state_dir.resolve() / "registry", settings.registry_port)

    @property
    def url(self) -> str:
        """Confluent's REST API, as the shop's clients (and any other) are given it."""
        return f"http://127.0.0.1:{self.port}{CONFLUENT_API}"

    @property
    def pid_file(self) -> Path:
        return self.folder / "registry.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "registry.log"

    def pid(self) -> int | None:
        """The pid of this folder's registry if it runs (pids get reused: its command line says)."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        marker = f"-D{FOLDER_PROPERTY}={self.folder}".encode()
        return pid if marker in cmdline else None

    # --- starting ------------------------------------------------------------------------

    def start(self, settings: Settings) -> None:
        """Start it in the background, unless it runs; return once it answers."""
        if self.pid() is None:
            if not can_listen_on(self.port):
                raise KafkaSetupError(
                    f"port {self.port} on 127.0.0.1 is in use by another program: stop it, or "
                    "choose another with PIZZASHOP_REGISTRY_PORT"
                )
            self._launch(java_command(), server_folder(settings))
        self.wait_until_ready()

    def _launch(self, java: str, server: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ,
            "REGISTRY_DATASOURCE_URL": f"jdbc:h2:file:{self.folder / 'data' / 'registry'}",
        }
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [java, *JVM_OPTIONS, *self._server_options(), "-jar", str(runner_jar(server))],
                cwd=self.folder,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal is the shop's to handle
            )
        self.pid_file.write_text(str(process.pid))
        # Right after the fork its command line is briefly empty, and `pid` would say stopped.
        deadline = time.monotonic() + EXEC_TIMEOUT
        while self.pid() is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)

    def _server_options(self) -> list[str]:
        return [
            f"-D{FOLDER_PROPERTY}={self.folder}",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={self.port}",
            # Quarkus's management interface would listen on 0.0.0.0:9000 where it is on.
            "-Dquarkus.management.enabled=false",
            "-Dquarkus.log.console.format=%d{HH:mm:ss} %-5p [%c{2.}] %s%e%n",
        ]

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.pid() is None:
                raise KafkaSetupError(
                    f"the Schema Registry exited while starting; {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise KafkaSetupError(
                    f"the Schema Registry did not answer on {self.url} within "
                    f"{START_TIMEOUT:g}s; {self.log_tail()}"
                )
            time.sleep(0.2)  # a starting JVM gives no event to wait on

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/subjects", timeout=1.0) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self) -> str:
        return tail_of(self.log_file) or f"(no log at {self.log_file})"

    # --- stopping ------------------------------------------------------------------------

    def stop(self) -> bool:
        """Stop it gracefully (killed if it does not stop in time); False: it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.pid() is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # our own child: reaped, so no zombie lingers
            if time.monotonic() > deadline:
                signal_group(pid, signal.SIGKILL)
            time.sleep(0.05)  # polling a process that may not be our child for its exit
        self.pid_file.unlink(missing_ok=True)
        return True


def server_folder(settings: Settings) -> Path:
    """The registry's server, unpacked from Maven Central into the cache on first use."""
    return fetched_jars(
        settings,
        "registry/pom.xml",
        f"apicurio-registry-{APICURIO_VERSION}",
        f"Apicurio Registry {APICURIO_VERSION}",
        unpack=True,
    )


def runner_jar(server: Path) -> Path:
    return server / f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"


def start_local_registry(settings: Settings) -> LocalRegistry:
    """Start (or find running) the registry of this state folder."""
    registry = LocalRegistry.of(settings)
    registry.start(settings)
    return registry
