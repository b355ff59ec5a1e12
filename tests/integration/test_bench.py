"""`pizzashop bench` on the session's broker: a small rush through the shop, the bare chain and
both peers, every order delivered, every figure there.

Times are not asserted: a benchmark prints figures, the test only checks it can produce them.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pizzashop.cli import main
from pizzashop.config import Settings, as_environment

RUN_FIGURES = {
    "orders_placed",
    "orders_delivered",
    "orders_per_second",
    "end_to_end_ms",
    "stages_ms",
    "lag_at_end",
    "processes",
    "in_flight",
}
SPREAD = {"p50", "p95", "p99", "max"}
HOPS = {"assemble", "bake", "delivery", "status"}


def test_bench_delivers_every_order_and_reports_every_figure(
    shop_settings: Settings, tmp_path: Path
) -> None:
    report_file, plot_file = tmp_path / "bench.json", tmp_path / "bench.png"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "--orders",
            "20",
            "--time-scale",
            "0",
            "--reference",
            "--peers",
            "quix,streams",
            "--timeout",
            "120",
            "--json",
            str(report_file),
            "--plot",
            str(plot_file),
        ],
        env=as_environment(shop_settings),
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    report = json.loads(report_file.read_text())
    assert report["settings"]["pipelines"] == ["reference", "quix", "streams"]
    for run in ("shop", "reference", "quix", "streams"):
        figures = report[run]
        assert figures.keys() >= RUN_FIGURES, f"{run} lacks {RUN_FIGURES - figures.keys()}"
        assert figures["orders_delivered"] == figures["orders_placed"] == 20, figures
        assert figures["end_to_end_ms"].keys() >= SPREAD
    assert set(report["shop"]["stages_ms"]) == {"placed->200", "200->300", "300->400", "400->seen"}
    # The session's cluster is an outside one to the bench: it meters its own process, no broker.
    assert set(report["shop"]["processes"]) == {
        "assemble",
        "bake",
        "delivery",
        "status",
        "bench (places, watches)",
    }
    lag = report["shop"]["lag_at_end"]
    assert {"pizza_assemble", "pizza_bake", "pizza_delivery", "pizza_status"} <= set(lag)
    # The status service shows its position to Kafka only once a second: it must still arrive.
    # (Under exactly-once each partition of pizza-status ends in a marker nobody consumes.)
    assert lag["pizza_status"] <= shop_settings.partitions, lag
    for chain in ("reference", "quix", "streams"):
        assert "orders_per_second" in report[f"shop_vs_{chain}"]
        processes = report[chain]["processes"]
        hops = {name.rsplit("-", 1)[1] for name in processes if name.startswith("bench-")}
        assert hops == HOPS, f"{chain} runs a process per hop: {sorted(processes)}"
        # Every hop committed what it passed on (a transaction's marker may stay behind).
        lag = report[chain]["lag_at_end"]
        assert len(lag) == len(HOPS) and max(lag.values()) <= shop_settings.partitions, lag
    assert "end-to-end p99 ms" in result.output, "the table is printed"
    assert plot_file.read_bytes().startswith(b"\x89PNG"), "the plot is a PNG"


def test_bench_refuses_a_partition_count_the_clusters_topics_do_not_have(
    shop_settings: Settings,
) -> None:
    other = shop_settings.partitions + 1
    result = CliRunner().invoke(
        main,
        ["bench", "--orders", "1", "--partitions", str(other)],
        env=as_environment(shop_settings),
    )

    assert result.exit_code != 0
    assert f"--partitions {other}: the topics exist already" in result.output
    assert f"with {shop_settings.partitions} partitions each" in result.output
