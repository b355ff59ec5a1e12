"""The bench's peers as asked for on the command line, and where one cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pizzashop.bench.pipelines import PEERS, PipelineUnavailable
from pizzashop.cli import main
from pizzashop.config import load_settings


def test_an_unknown_peer_is_refused_before_anything_starts() -> None:
    result = CliRunner().invoke(
        main, ["bench", "--orders", "1", "--peer", "spark", "--peers", "quix,flink"]
    )

    assert result.exit_code != 0
    assert "no peer named flink, spark (known: quix, streams)" in result.output


def test_kafka_streams_refuses_a_cluster_reached_through_librdkafka_properties(
    tmp_path: Path,
) -> None:
    properties = tmp_path / "client.properties"
    properties.write_text("bootstrap.servers=broker:9093\nsecurity.protocol=SASL_SSL\n")
    settings = load_settings(kafka_properties_file=properties)

    with pytest.raises(PipelineUnavailable, match="--peer streams runs on a cluster without"):
        PEERS["streams"].hop_command(settings, "bench-ks-0-assemble", "a", "b")
