"""`pizzashop bench` on the session's broker: a small rush through the shop, the bare chain,
both peers, and (apart) the shop without its pantry, every order delivered, every figure there.

Times are not asserted: a benchmark prints figures, the test only checks it can produce them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

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
    "own_memory_mb",
    "in_flight",
}
SPREAD = {"p50", "p95", "p99", "max"}
HOPS = {"assemble", "bake", "delivery", "status"}


def bench_with_report(
    shop_settings: Settings, report_file: Path, *options: str
) -> tuple[Result, dict[str, Any]]:
    """`pizzashop bench OPTIONS --json REPORT_FILE` on the session's broker, which must
    succeed: its output, and the report it wrote."""
    result = CliRunner().invoke(
        main,
        ["bench", *options, "--json", str(report_file)],
        env=as_environment(shop_settings),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result, json.loads(report_file.read_text())


def test_bench_delivers_every_order_and_reports_every_figure(
    shop_settings: Settings, tmp_path: Path
) -> None:
    report_file, plot_file = tmp_path / "bench.json", tmp_path / "bench.png"
    result, report = bench_with_report(
        shop_settings,
        report_file,
        *["--orders", "20", "--time-scale", "0", "--reference", "--peers", "quix,streams"],
        *["--timeout", "120", "--plot", str(plot_file)],
    )
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
        "pantry",
        "bake",
        "delivery",
        "status",
        "bench (places, watches)",
    }
    memory = report["shop"]["own_memory_mb"]
    assert 0 < memory["pss"] < memory["rss"], "shared pages count once in PSS, in RSS each time"
    lag = report["shop"]["lag_at_end"]
    assert {
        "pizza_assemble",
        "pizza_pantry",
        "pizza_bake",
        "pizza_delivery",
        "pizza_status",
    } <= set(lag)
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


def test_bench_sets_the_shop_beside_itself_without_its_pantry(
    shop_settings: Settings, tmp_path: Path
) -> None:
    """A test of its own, beside the one above rather than in it: the suite runs them on two
    workers at once."""
    report_file = tmp_path / "bench.json"
    result, report = bench_with_report(
        shop_settings,
        report_file,
        *["--orders", "20", "--time-scale", "0", "--without-pantry", "--timeout", "120"],
    )
    assert report["shop"]["orders_delivered"] == report["shop"]["orders_placed"] == 20
    without = report["shop without pantry"]
    assert without["orders_delivered"] == without["orders_placed"] == 20, without
    assert without["stages_ms"]["placed->200"]["count"] == 20, "its kitchen stamps the stages"
    assert "pantry" not in without["processes"] and "pizza_pantry" not in without["lag_at_end"]
    assert {"assemble", "bake", "delivery", "status"} <= set(without["processes"])
    assert report["settings"]["without_pantry"] is True
    assert report["shop_vs_shop without pantry"]["orders_per_second"] > 0
    assert "shop vs shop without pantry: " in result.output


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


FRONT_DOOR_FIGURES = {
    "concurrency",
    "customers",
    "requests",
    "orders_per_second",
    "latency_ms",
    "answers",
    "client_errors",
    "server_errors",
    "client_cpu_seconds",
    "slowest_sent_s",
}


def test_bench_through_the_web_reports_the_front_door_beside_the_kitchen(
    shop_settings: Settings, tmp_path: Path
) -> None:
    report_file = tmp_path / "bench.json"
    result, report = bench_with_report(
        shop_settings,
        report_file,
        *["--orders", "30", "--time-scale", "0", "--through", "web"],
        *["--concurrency", "4", "--timeout", "120"],
    )
    shop = report["shop"]
    assert shop["orders_delivered"] == shop["orders_placed"] == 30, shop
    door = shop["front_door"]
    assert door.keys() >= FRONT_DOOR_FIGURES, f"lacks {FRONT_DOOR_FIGURES - door.keys()}"
    assert door["answers"] == {"201": 30}, "every order answered 201, none refused or failed"
    assert door["client_errors"] == door["server_errors"] == 0
    assert door["customers"] >= 8, "a few orders per customer, so no per-customer limit decides"
    assert door["latency_ms"].keys() >= SPREAD and door["orders_per_second"] > 0
    assert "web" in shop["processes"], "the web app's CPU and memory are metered too"
    assert report["settings"]["through"] == "web"
    assert "front door (shop): POST /api/orders, 4 clients at once" in result.output
    first, median, last = door["slowest_sent_s"]
    assert 0 <= first <= median <= last, "when the slowest answers were asked, in the rush"
    assert "the slowest 1% were sent " in result.output
    bare = report["bare door"]
    assert bare["orders_delivered"] == bare["orders_placed"] == 30, "the same kitchen behind it"
    assert bare["front_door"]["answers"] == {"201": 30} and "bare door" in bare["processes"]
    ratios = report["shop_vs_bare door"]
    for figure in ("front_door_orders_per_second", "front_door_p99_latency",
                   "front_door_cpu_per_order"):  # fmt: skip
        assert ratios[figure] > 0, ratios
    assert "front door (bare door): POST /api/orders" in result.output
    assert "the front doors: " in result.output and "CPU per order x" in result.output


def test_bench_watchers_reports_the_cost_of_open_streams(
    shop_settings: Settings, tmp_path: Path
) -> None:
    report_file = tmp_path / "watchers.json"
    result, report = bench_with_report(
        shop_settings, report_file, "--watchers", "20", "--idle", "1"
    )
    assert report["watchers"] == 20 and report["changes_missed"] == 0, report
    assert report["change_to_stream_ms"]["count"] == 20
    assert report["idle_cpu_share"] >= 0 and report["change_to_stream_ms"]["p99"] > 0
    assert "20 open event streams on one web process" in result.output


def test_bench_door_rounds_alternates_the_two_front_doors_before_one_kitchen(
    shop_settings: Settings, tmp_path: Path
) -> None:
    report_file = tmp_path / "doors.json"
    result, report = bench_with_report(
        shop_settings,
        report_file,
        # 100 orders a round: enough CPU for the process's clock ticks (10 ms) to count it
        *["--door-rounds", "2", "--orders", "100", "--concurrency", "4"],
    )
    rounds = report["rounds"]
    assert [r["door"] for r in rounds] == ["bare door", "shop"], "the bare door first"
    for each in rounds:
        assert each["answers"] == {"201": 100}, "every order answered 201"
        assert each["cpu_ms_per_order"] > 0 and each["orders_per_second"] > 0
    assert len(report["pairs"]) == 1
    assert "pair 1: orders/s x" in result.output and "CPU per order x" in result.output
