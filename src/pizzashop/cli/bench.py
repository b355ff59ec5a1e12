"""`pizzashop bench`: its options, gathered into one object, and the command that hands them to
the bench (`pizzashop.bench`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pizzashop.cli.common import REPORT_FILE, ShopError, number_option, settings_of
from pizzashop.config import Settings

if TYPE_CHECKING:
    from pizzashop.bench import BenchPlan
    from pizzashop.bench.door_rounds import DoorRounds
    from pizzashop.bench.watchers import WatchersReport


@dataclass(frozen=True)
class BenchOptions:
    """The options of `pizzashop bench`, named as its parameters."""

    # the load: how many orders, how fast, and through which door
    orders: int | None
    rate: float | None
    duration: float | None
    warm_up: float
    timeout: float
    through: str
    concurrency: int
    # the shop under test: settings of its own for the run
    time_scale: float
    capacity: int | None
    partitions: int | None
    guarantee: str | None
    metrics: bool | None
    tracing: bool
    registry: bool
    keep_state: bool
    # what it is measured against
    reference: bool
    peer_names: tuple[str, ...]
    peer_list: str | None
    without_pantry: bool
    # the report
    json_path: Path | None
    plot_path: Path | None
    # instead of a rush: order event streams that watch
    watchers: int | None
    idle: float
    # instead of a rush: the two front doors in turn
    door_rounds: int | None

    def shop_settings(self, settings: Settings) -> Settings:
        """The settings with the run's own time scale, and whatever else the options set."""
        changes = {
            "capacity": self.capacity,
            "partitions": self.partitions,
            "processing_guarantee": self.guarantee,
            "metrics": self.metrics,
        }
        given = {name: value for name, value in changes.items() if value is not None}
        return settings.replace(time_scale=self.time_scale, **given)

    def peers(self, known: Collection[str]) -> tuple[str, ...]:
        """The peers asked for, from --peer and --peers, each once in the order given."""
        listed = (name.strip() for name in (self.peer_list or "").split(","))
        peers = [*self.peer_names, *(name for name in listed if name)]
        unknown = sorted(set(peers) - set(known))
        if unknown:
            raise ShopError(f"no peer named {', '.join(unknown)} (known: {', '.join(known)})")
        return tuple(dict.fromkeys(peers))

    def plan(self, known_peers: Collection[str]) -> BenchPlan:
        """The rush to run: a number of orders, or a rate for a duration."""
        from pizzashop.bench import BenchPlan  # once `bench` has found the bench's extras

        by_count = self.orders is not None and self.rate is None and self.duration is None
        by_rate = self.orders is None and self.rate is not None and self.duration is not None
        if not (by_count or by_rate):
            raise ShopError("give --orders N, or --rate R with --duration S")
        return BenchPlan(
            orders=self.orders,
            rate=self.rate,
            duration=self.duration,
            partitions=self.partitions,
            reference=self.reference,
            peers=self.peers(known_peers),
            without_pantry=self.without_pantry,
            timeout=self.timeout,
            warm_up=self.warm_up,
            keep_state=self.keep_state,
            tracing=self.tracing,
            registry=self.registry,
            through_web=self.through == "web",
            concurrency=self.concurrency,
        )


@click.command()
@click.option("--orders", type=click.IntRange(1), help="Place N orders at once.")
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    help="Orders per second, for --duration seconds (instead of --orders).",
)
@click.option("--duration", type=click.FloatRange(0, min_open=True), help="Seconds at --rate.")
@number_option("--time-scale", 0, 0.0, "1 = the seed's seconds, 0 = instant kitchen work.")
@click.option("--capacity", type=click.IntRange(0), help="Orders a service works on at once.")
@click.option(
    "--partitions",
    type=click.IntRange(1),
    help="Partitions of each topic the bench creates (default: the setting, 6).",
)
@click.option(
    "--guarantee",
    type=click.Choice(["exactly_once", "at_least_once"]),
    help="Processing guarantee (default: the setting, exactly_once).",
)
@click.option(
    "--reference", is_flag=True, help="First run the same rush through a bare pass-through chain."
)
@click.option(
    "--peer",
    "peer_names",
    multiple=True,
    metavar="NAME",
    help="Then run the same chain with a peer: quix (Quix Streams) or streams (Kafka Streams).",
)
@click.option(
    "--peers", "peer_list", metavar="NAMES", help="Peers as a list: --peers quix,streams."
)
@click.option(
    "--without-pantry",
    is_flag=True,
    help="Before the shop, run the same rush through it with stock not counted (no pantry), "
    "to show what the pantry costs.",
)
@click.option("--json", "json_path", type=REPORT_FILE, help="Write the report as JSON.")
@click.option(
    "--plot",
    "plot_path",
    type=REPORT_FILE,
    help="Write a latency histogram and orders in flight as a PNG.",
)
@number_option("--timeout", 1, 300.0, "Seconds after the last order to wait for deliveries.")
@number_option(
    "--warm-up", 0, 0.0, "Seconds at --rate before the measured orders (delivered, not counted)."
)
@click.option(
    "--keep-state", is_flag=True, help="Keep the bench's state folder (logs, read model)."
)
@click.option(
    "--metrics/--no-metrics",
    default=None,
    help="Count the services' metrics (default: the setting, on).",
)
@click.option(
    "--tracing", is_flag=True, help="The services make and export spans (to a sink of the bench's)."
)
@click.option(
    "--registry",
    is_flag=True,
    help="With a local Schema Registry of the bench's: every record framed with its schema id.",
)
@click.option(
    "--through",
    type=click.Choice(["kafka", "web"]),
    default="kafka",
    show_default=True,
    help="Place the orders straight on pizza-ordered, or with POST /api/orders on a web app "
    "the bench starts (signed-in customers, a few orders each).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="With --through web: requests at once.",
)
@click.option(
    "--watchers",
    type=click.IntRange(1),
    help="Instead of a rush: open this many order event streams on one web app and report "
    "its CPU while nothing changes and each change's delay when every order moves.",
)
@number_option("--idle", 1, 10.0, "With --watchers: seconds measured while nothing changes.")
@click.option(
    "--door-rounds",
    type=click.IntRange(2),
    help="Instead of a rush: N rounds of --orders through the shop's front door and the bare "
    "one in turn, one kitchen behind both, each door's CPU per order, rate and p99 a round.",
)
@click.pass_context
def bench(ctx: click.Context, /, **given: Any) -> None:
    """Measure the shop: place a rush of orders through the real broker and follow each one.

    Starts the shop's services (and a local broker, unless a cluster is configured) itself.
    """
    options = BenchOptions(**given)
    try:  # the bench's extras (psutil, matplotlib, aiohttp, Quix Streams) are optional
        from pizzashop.bench import BenchError, run_bench
        from pizzashop.bench.pipelines import PEERS
        from pizzashop.bench.report import write_json
    except ImportError as e:
        raise ShopError(
            f"the bench needs its extras ({e.name} is missing): pip install 'pizzashop[bench]'"
        ) from None
    if options.door_rounds is not None or options.watchers is not None:
        try:
            report = _apart_from_a_rush(options, options.shop_settings(settings_of(ctx)))
        except BenchError as e:
            raise ShopError(str(e)) from None
        click.echo(report.table())
        if options.json_path is not None:
            write_json(options.json_path, report.as_json())
        return
    plan = options.plan(known_peers=PEERS)
    try:
        result = run_bench(options.shop_settings(settings_of(ctx)), plan)
    except BenchError as e:
        raise ShopError(str(e)) from None
    click.echo(result.table())
    if options.json_path is not None:
        result.write_json(options.json_path)
    if options.plot_path is not None:
        result.write_plot(options.plot_path)
    if not result.all_delivered:
        raise ShopError(f"not every order was delivered; logs kept in {result.state_dir}")


def _apart_from_a_rush(options: BenchOptions, settings: Settings) -> DoorRounds | WatchersReport:
    """What `--door-rounds` or `--watchers` measures instead of a rush: a report with a
    table and its JSON."""
    from pizzashop.bench import run_door_rounds, run_watchers

    if options.door_rounds is not None:
        orders = options.orders or 4000
        return run_door_rounds(settings, options.door_rounds, orders, options.concurrency)
    assert options.watchers is not None, "one of the two is asked for"
    return run_watchers(settings, options.watchers, options.idle)
