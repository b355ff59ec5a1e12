"""`pizzashop chaos`: the whole shop under load and random faults on a cluster of its own, then
the checks that every order ended once; or, with --rebalance, what a rebalance costs."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import click

from pizzashop.chaos import ChaosPlan, run_chaos
from pizzashop.chaos.rebalance import measure_rebalances
from pizzashop.cli.common import REPORT_FILE, ShopError, number_option, settings_of
from pizzashop.config import Settings
from pizzashop.kafka.jars import KafkaSetupError


@click.command()
@number_option("--duration", 1, 120.0, "Seconds of load and faults (then the shop drains).")
@click.option(
    "--seed", type=int, default=None, help="Seed of the faults and the load (default: random)."
)
@number_option("--rate", 0.1, 4.0, "Orders a second.")
@click.option(
    "--cancel-share",
    type=click.FloatRange(0, 1),
    default=0.2,
    show_default=True,
    help="Share of the orders cancelled, each at a random moment.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the run's cluster, logs and read model here (default: a temporary folder, "
    "kept only when a check fails).",
)
@click.option("--json", "json_path", type=REPORT_FILE, help="Write the report as JSON.")
@click.option(
    "--rebalance",
    "rebalance_runs",
    type=click.IntRange(1, 10),
    default=None,
    help="Instead: measure what an instance joining and one killed cost the orders, under "
    "each group protocol, this many runs of each.",
)
@click.pass_context
def chaos(
    ctx: click.Context,
    duration: float,
    seed: int | None,
    rate: float,
    cancel_share: float,
    state_dir: Path | None,
    json_path: Path | None,
    rebalance_runs: int | None,
) -> None:
    """Run the whole shop on a three-node cluster of its own under load and random faults,
    then check that every order ended delivered or cancelled exactly once.

    Exits with 1 when any check fails; run again with the printed --seed to replay.
    """
    if rebalance_runs is not None:
        _measure_rebalances(settings_of(ctx), rebalance_runs, json_path)
        return
    plan = _chaos_plan(seed, duration, rate, cancel_share, state_dir)
    _stop_on_term()
    try:
        report = run_chaos(settings_of(ctx), plan, click.echo)
    except KafkaSetupError as e:
        raise ShopError(str(e)) from None
    click.echo(report.text())
    if json_path is not None:
        report.write_json(json_path)
    if not report.passed:
        raise ShopError(
            f"{len(report.violations)} violation(s); seed {plan.seed}; logs in {report.state_dir}"
        )


def _chaos_plan(
    seed: int | None, duration: float, rate: float, cancel_share: float, state_dir: Path | None
) -> ChaosPlan:
    if state_dir is not None and state_dir.exists() and any(state_dir.iterdir()):
        raise ShopError(f"--state-dir {state_dir} is not empty: a run starts from nothing")
    return ChaosPlan(
        seed=random.randrange(1_000_000) if seed is None else seed,
        duration=duration,
        rate=rate,
        cancel_share=cancel_share,
        state_dir=state_dir,
    )


def _stop_on_term() -> None:
    """A TERM, like a Ctrl-C, unwinds the run, which stops every process and node it started."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def _measure_rebalances(settings: Settings, runs: int, json_path: Path | None) -> None:
    _stop_on_term()
    pauses = measure_rebalances(settings, runs, click.echo)
    if json_path is not None:
        json_path.write_text(json.dumps([p.as_dict() for p in pauses], indent=2) + "\n")
