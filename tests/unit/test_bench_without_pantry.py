"""The shop beside itself without its pantry: asked for on the command line, refused where it
cannot be, and set beside the shop in the report."""

from __future__ import annotations

from click.testing import CliRunner

from pizzashop.bench.contestants import WITHOUT_PANTRY
from pizzashop.bench.report import STAGES, RunReport, Spread, as_json, table
from pizzashop.cli import main


def a_run(name: str, orders_per_second: float, p99: float, stamped: bool = True) -> RunReport:
    latency = Spread.of([40.0] * 98 + [p99, p99])
    stages = {stage: Spread.of([10.0] if stamped else []) for stage in STAGES}
    return RunReport(
        name, 100, 100, 0, 1.0, orders_per_second, latency, stages, {}, {}, {"rss": 1, "pss": 1}
    )


def test_the_shop_is_shown_as_a_share_of_the_shop_without_its_pantry() -> None:
    shop, without = a_run("shop", 800.0, 150.0), a_run(WITHOUT_PANTRY, 1000.0, 100.0)

    shown = table(shop, [without])

    assert "shop vs shop without pantry: 80% of its orders/s" in shown
    assert "p99 latency x1.5" in shown
    ratios = as_json({}, shop, [without])["shop_vs_shop without pantry"]
    assert (ratios["orders_per_second"], ratios["p99_latency"]) == (0.8, 1.5)


def test_each_run_through_the_kitchen_shows_its_stages_and_a_pipeline_none() -> None:
    runs = [a_run("shop", 1.0, 1.0), a_run(WITHOUT_PANTRY, 1.0, 1.0)]
    shown = table(runs[0], [*runs[1:], a_run("reference", 1.0, 1.0, stamped=False)])

    stage_row = next(line for line in shown.splitlines() if line.startswith("placed->200"))
    assert stage_row.split()[3:] == ["10", "/", "10", "10", "/", "10", "-"], stage_row


def test_without_pantry_is_refused_when_the_shop_counts_no_stock_to_begin_with() -> None:
    result = CliRunner().invoke(
        main, ["bench", "--orders", "1", "--without-pantry"], env={"PIZZASHOP_COUNT_STOCK": "false"}
    )

    assert result.exit_code != 0
    assert "stock is not counted (PIZZASHOP_COUNT_STOCK=false)" in result.output
