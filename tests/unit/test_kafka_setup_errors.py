"""Bad set-up gets one clear line: no java, no mvn, a port in use, a broker that does not come up."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from pizzashop.config import load_settings
from pizzashop.kafka.cluster import LocalKafka, _java_hash, local_kafka_status, probe_groups
from pizzashop.kafka.jars import KafkaSetupError, java_command, kafka_jars
from tests.ports import free_port_block


def without(program: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == program else real_which(name)
    )


def test_no_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    without("java", monkeypatch)
    with pytest.raises(KafkaSetupError, match="java not found: install Java 17"):
        java_command()


def test_no_maven_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without("mvn", monkeypatch)
    settings = load_settings(cache_dir=tmp_path / "empty-cache")
    with pytest.raises(KafkaSetupError, match="mvn not found: install Maven"):
        kafka_jars(settings)


def test_a_port_in_use_is_named_before_anything_is_fetched_or_formatted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without("mvn", monkeypatch)
    port = free_port_block(2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        settings = load_settings(
            state_dir=tmp_path,
            kafka_port=port,
            kafka_controller_port=port + 1,
            cache_dir=tmp_path / "no-jars",
        )
        with pytest.raises(
            KafkaSetupError, match=f"port {port} on 127.0.0.1 is in use.*PIZZASHOP_KAFKA_PORT"
        ):
            LocalKafka(settings).start()
    assert not (tmp_path / "kafka").exists(), "nothing was formatted"


def test_a_state_folder_without_a_broker_is_reported_as_not_running(tmp_path: Path) -> None:
    status = local_kafka_status(load_settings(state_dir=tmp_path))
    assert not status.running and status.nodes == ()


def test_a_broker_that_does_not_come_up_in_time_shows_its_log_and_is_stopped(
    tmp_path: Path,
) -> None:
    port = free_port_block(2)
    settings = load_settings(
        state_dir=tmp_path, kafka_port=port, kafka_controller_port=port + 1, kafka_start_timeout=0.5
    )
    kafka = LocalKafka(settings)
    with pytest.raises(
        KafkaSetupError, match=r"did not answer .* within 0\.5s|exited while starting"
    ) as failure:
        kafka.start()
    assert "last lines of" in str(failure.value) or "no log in" in str(failure.value)
    assert not kafka.is_running() and kafka.nodes[0].pid() is None, "a java process was left behind"


def test_the_readiness_probe_has_a_group_on_every_partition_of_consumer_offsets() -> None:
    assert _java_hash("hello") == 99162322  # Java: "hello".hashCode()
    assert _java_hash("pizzashop-probe-12") == -2063735091  # Java, the same
    for partitions in (1, 10, 50):
        groups = probe_groups(partitions)
        assert [abs(_java_hash(g)) % partitions for g in groups] == list(range(partitions))
