"""The shop on a secured cluster, reached only through a properties file.

`pizzashop kafka start --secure` starts a broker of this module's own with a SASL_SSL listener
(PLAIN over TLS, certificates from the project's own script) and prints the properties file
to use. Through that file the topics are made and the four services deliver orders; with a
wrong password, or a CA that did not sign the broker's certificate, a command says so in one
line within seconds instead of waiting on a broker it can never use.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pizzashop.config import Settings, as_environment, load_settings, read_properties
from pizzashop.contract import SERVICES
from pizzashop.kafka.cluster import running_local_kafka
from pizzashop.kafka.secure import make_certificates
from pizzashop.kafka.topics import create_topics
from tests.conftest import TEST_TIME_SCALE, broker_settings
from tests.ports import free_port
from tests.shop_harness import RunningShop, an_order, place, wait_until_delivered

ORDERS = 10
# Seconds for a command to give up on a broker that refuses it, its own start included: a
# refusal is seen at the first answer (kafka/reaching.py), and the line says it was one, not
# a broker away. The bound only catches a command that goes on asking; on a busy machine a
# command's start alone took 10 s and more, so it is not tight.
REFUSAL_WITHIN = 30.0
EXPORT_PREFIX = "export PIZZASHOP_KAFKA_PROPERTIES_FILE="


def pizzashop(
    arguments: list[str], environment: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """The `pizzashop` command, with only the given PIZZASHOP_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIZZASHOP_")}
    return subprocess.run(
        [sys.executable, "-m", "pizzashop", *arguments],
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,  # the tests look at the return code
    )


@pytest.fixture(scope="module")
def properties_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The properties file that `pizzashop kafka start --secure` prints, its broker running."""
    settings = broker_settings(
        tmp_path_factory.mktemp("secured-kafka"), kafka_secure_port=free_port()
    )
    started = pizzashop(["kafka", "start", "--secure"], as_environment(settings), timeout=120)
    try:
        assert started.returncode == 0, f"kafka start --secure failed: {started.stderr}"
        exports = [line for line in started.stdout.splitlines() if line.startswith(EXPORT_PREFIX)]
        assert exports, f"no {EXPORT_PREFIX}... line in: {started.stdout!r}"
        yield Path(exports[0].removeprefix(EXPORT_PREFIX))
    finally:
        broker = running_local_kafka(settings)
        if broker is not None:
            broker.stop()


def shop_settings_through(properties_file: Path, state_dir: Path) -> Settings:
    return load_settings(
        bootstrap_servers=read_properties(properties_file)["bootstrap.servers"],
        kafka_properties_file=properties_file,
        state_dir=state_dir,
        time_scale=TEST_TIME_SCALE,
        capacity=0,
        web_port=0,
    )


def with_changes(properties_file: Path, target: Path, changes: dict[str, str]) -> Path:
    """A copy of the properties file with some of its settings changed."""
    settings = {**read_properties(properties_file), **changes}
    target.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return target


def refused_line(properties_file: Path, state_dir: Path) -> str:
    """What `pizzashop topics create` says through `properties_file`, checked to be one line
    said within the deadline with a failing exit."""
    environment = {
        "PIZZASHOP_KAFKA_PROPERTIES_FILE": str(properties_file),
        "PIZZASHOP_STATE_DIR": str(state_dir),
    }
    began = time.monotonic()
    result = pizzashop(["topics", "create"], environment, timeout=REFUSAL_WITHIN + 15)
    took = time.monotonic() - began
    assert result.returncode != 0, f"topics create succeeded with {properties_file}"
    assert took < REFUSAL_WITHIN, f"took {took:.1f}s to give up; said {result.stderr!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {result.stderr!r}"
    return lines[0]


def test_the_shop_delivers_through_the_properties_file(
    properties_file: Path, tmp_path: Path
) -> None:
    settings = shop_settings_through(properties_file, tmp_path / "state")
    assert read_properties(properties_file)["security.protocol"] == "SASL_SSL"
    create_topics(settings)
    shop = RunningShop(settings)
    for name in SERVICES:
        shop.start(name)
    try:
        order_ids = [place(settings, an_order(f"Secure {i}")) for i in range(ORDERS)]
        wait_until_delivered(shop.read_model(), order_ids, timeout=45)
    finally:
        shop.stop_all()


def test_a_wrong_password_is_one_line_naming_the_credentials(
    properties_file: Path, tmp_path: Path
) -> None:
    wrong = with_changes(
        properties_file, tmp_path / "wrong.properties", {"sasl.password": "not-it"}
    )
    line = refused_line(wrong, tmp_path / "state")
    assert "refused the credentials" in line and str(wrong) in line, line


def test_an_untrusted_certificate_is_one_line_naming_the_ca_setting(
    properties_file: Path, tmp_path: Path
) -> None:
    make_certificates(tmp_path / "other-ca", ca_only=True)
    untrusted = with_changes(
        properties_file,
        tmp_path / "untrusted.properties",
        {"ssl.ca.location": str(tmp_path / "other-ca" / "ca.pem")},
    )
    line = refused_line(untrusted, tmp_path / "state")
    assert "is not trusted by ssl.ca.location" in line and str(untrusted) in line, line
