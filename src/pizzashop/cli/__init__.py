"""The `pizzashop` command: thin, it reads the settings once and calls the modules that do the work."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pizzashop import menu
from pizzashop.config import ConfigError, Settings, load_settings
from pizzashop.contract import SERVICES, Status

if TYPE_CHECKING:
    from pizzashop.readmodel.store import ReadModel

log = logging.getLogger("pizzashop.cli")


class ShopError(click.ClickException):
    """A problem the user can fix, shown as one clear line."""


class ShopCommands(click.Group):
    """Every command's known failures become one line (the whole story at DEBUG): the one
    place where a broker or a database that is away, or a bad setting, is told to the user."""

    def invoke(self, ctx: click.Context) -> Any:
        from confluent_kafka import KafkaException

        from pizzashop.kafka.reaching import Unreachable
        from pizzashop.readmodel import ReadModelUnusable

        try:
            return super().invoke(ctx)
        except (Unreachable, ReadModelUnusable, ConfigError, TimeoutError) as e:
            log.debug("%s failed:", ctx.invoked_subcommand, exc_info=True)
            raise ShopError(str(e)) from e
        except KafkaException as e:
            log.debug("%s failed:", ctx.invoked_subcommand, exc_info=True)
            raise ShopError(kafka_failure(ctx, e)) from e


def kafka_failure(ctx: click.Context, error: Exception) -> str:
    """A Kafka error the commands do not expect, in one line naming the broker."""
    from pizzashop.kafka.reaching import broker_address

    settings = ctx.find_object(Settings)
    where = "" if settings is None else f" at {broker_address(settings)}"
    reason = error.args[0].str() if error.args and hasattr(error.args[0], "str") else str(error)
    return f"the Kafka broker{where} failed: {reason} (PIZZASHOP_LOG_LEVEL=DEBUG shows more)"


# An order id is URL-safe base64: one in 64 starts with "-", which is still the id, not an option.
ORDER_ID_MAY_START_WITH_A_DASH = {"ignore_unknown_options": True}


@click.group(cls=ShopCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="A TOML config file (default: ./pizzashop.toml if present, or $PIZZASHOP_CONFIG).",
)
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """pizzashop: a pizza takeaway shop run as event-driven microservices on Apache Kafka."""
    try:
        ctx.obj = load_settings(config_file)
    except ConfigError as e:
        raise ShopError(str(e)) from None
    level = logging.DEBUG if ctx.obj.log_level == "DEBUG" else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")


@contextmanager
def traced(command: str) -> Iterator[None]:
    """A command that produces records is the root of their traces (while tracing is on)."""
    from pizzashop.observe import tracing

    tracing.start_tracing("cli")
    if not tracing.enabled():
        yield
        return
    try:
        with tracing.tracer().start_as_current_span(command):
            yield
    finally:
        tracing.stop_tracing()


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    assert settings is not None, "main() stores the settings"
    return settings


def existing_readmodel(settings: Settings) -> ReadModel:
    """The shop's read model, for a command that only reads it: never made where there is none."""
    from pizzashop.readmodel.store import open_readmodel, readmodel_exists

    url = settings.readmodel_url
    if not readmodel_exists(url):
        raise ShopError(
            f"no read model at {url.removeprefix('sqlite:///')}: run this from the folder where "
            "the shop runs, or set PIZZASHOP_STATE_DIR or PIZZASHOP_DATABASE_URL"
        )
    return open_readmodel(url)


# --- running the shop ----------------------------------------------------------------------


@main.command()
@click.option("--no-web", is_flag=True, help="Run the services without the web app.")
@click.option(
    "--instances",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Instances of each service, and web processes on neighbouring ports from web_port; "
    "the topics' partitions are the ceiling on instances that have work.",
)
@click.option(
    "--nodes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 5),
    help="Nodes in the local KRaft cluster, when no cluster is configured (topics are then "
    "replicated to up to three).",
)
@click.pass_context
def up(ctx: click.Context, no_web: bool, instances: int, nodes: int) -> None:
    """Run the whole shop in the foreground (broker if needed, topics, services, web) until Ctrl-C."""
    from pizzashop.kafka.jars import KafkaSetupError
    from pizzashop.kafka.topics import TopicsNotCoPartitioned
    from pizzashop.local.shop import run_shop

    try:
        code = run_shop(settings_of(ctx), with_web=not no_web, instances=instances, nodes=nodes)
    except (KafkaSetupError, TopicsNotCoPartitioned) as e:
        raise ShopError(str(e)) from None
    ctx.exit(code)


@main.command()
@click.argument("name", type=click.Choice(list(SERVICES)))
@click.pass_context
def service(ctx: click.Context, name: str) -> None:
    """Run one service. Run it twice and the two instances share the partitions."""
    from pizzashop.kafka.topics import TopicsNotCoPartitioned
    from pizzashop.observe import tracing
    from pizzashop.observe.logs import configure_logging
    from pizzashop.runtime import run_service
    from pizzashop.services import build_service

    settings = settings_of(ctx)
    configure_logging(name, settings.log_level, settings.log_format)
    tracing.start_tracing(name)
    try:
        run_service(build_service(name, settings), settings)
    except TopicsNotCoPartitioned as e:
        raise ShopError(f"{name} cannot start: {e}") from None


# --- placing and following orders ----------------------------------------------------------


@main.command()
@click.option("--name", required=True, help="The customer's name.")
@click.option("--sauce", required=True, help="One of: " + ", ".join(menu.SAUCES))
@click.option("--cheese", required=True, help="One of: " + ", ".join(menu.CHEESES))
@click.option("--main-topping", required=True, help="One of: " + ", ".join(menu.MAIN_TOPPINGS))
@click.option(
    "--extra", "extras", multiple=True, help="Repeat for each: " + ", ".join(menu.EXTRA_TOPPINGS)
)
@click.option("--customer", default=None, help="Customer id (default: cli-<your user name>).")
@click.option(
    "--idempotency-key",
    default=None,
    help="Any unique string: the same key (and customer) is the same order, so running "
    "the command again never makes a second pizza. Default: a new one.",
)
@click.option("--follow", is_flag=True, help="Wait and show each status until it is delivered.")
@click.option(
    "--timeout", default=120.0, show_default=True, help="Seconds to follow before giving up."
)
@click.pass_context
def order(
    ctx: click.Context,
    name: str,
    sauce: str,
    cheese: str,
    main_topping: str,
    extras: tuple[str, ...],
    customer: str | None,
    idempotency_key: str | None,
    follow: bool,
    timeout: float,
) -> None:
    """Place an order from the terminal."""
    from pizzashop.cli.placing import NOT_PLACED, not_placed
    from pizzashop.commands.desk import desk_for_one_command
    from pizzashop.commands.ordering import PlaceOrder, new_idempotency_key

    settings = settings_of(ctx)
    key = new_idempotency_key() if idempotency_key is None else idempotency_key
    chosen = {"name": name, "sauce": sauce, "cheese": cheese, "main_topping": main_topping}
    try:
        command = PlaceOrder(
            customer or f"cli-{getpass.getuser()}", {**chosen, "extra_toppings": list(extras)}, key
        )
        desk = desk_for_one_command(settings)  # the broker away: nothing sent, nothing ordered
        with traced("pizzashop order"):
            placed = asyncio.run(desk.place(command)).placed
    except NOT_PLACED as e:
        raise ShopError(not_placed(e, key)) from None
    click.echo(f"Order {placed.order_id} placed for {name}")
    if follow:
        from pizzashop.cli.following import follow_order

        final = follow_order(settings, placed.order_id, timeout, click.echo)
        if final is None:
            raise ShopError(f"order {placed.order_id} was not delivered within {timeout:g}s")
        if final is not Status.DELIVERED:
            raise ShopError(f"order {placed.order_id} ended {final.value}: {final.text}")


# --- the local broker and the topics -------------------------------------------------------


@main.group()
def kafka() -> None:
    """The local Apache Kafka broker (used when no bootstrap servers are configured)."""


@kafka.command("start")
@click.option(
    "--nodes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 5),
    help="Nodes in the local KRaft cluster (3 for fault tests).",
)
@click.option(
    "--secure",
    is_flag=True,
    help="Add a SASL_SSL listener (PLAIN over TLS, a new password each start) and print the "
    "properties file that reaches it.",
)
@click.pass_context
def kafka_start(ctx: click.Context, nodes: int, secure: bool) -> None:
    """Start the local broker in the background and print its bootstrap address."""
    from pizzashop.kafka.cluster import start_local_kafka
    from pizzashop.kafka.jars import KafkaSetupError

    try:
        broker = start_local_kafka(settings_of(ctx), nodes=nodes, secure=secure)
    except KafkaSetupError as e:
        raise ShopError(str(e)) from None
    click.echo(broker.bootstrap_servers)
    if secure and broker.client_properties_file is not None:
        click.echo(f"export PIZZASHOP_KAFKA_PROPERTIES_FILE={broker.client_properties_file}")


@kafka.command("stop")
@click.pass_context
def kafka_stop(ctx: click.Context) -> None:
    """Stop the local broker gracefully."""
    from pizzashop.kafka.cluster import running_local_kafka

    broker = running_local_kafka(settings_of(ctx))
    if broker is None or not any(node.pid() for node in broker.nodes):
        click.echo("Apache Kafka is not running")
        return
    broker.stop()
    click.echo("Apache Kafka stopped")


@kafka.command("status")
@click.pass_context
def kafka_status(ctx: click.Context) -> None:
    """Say whether the local broker runs, and where (or whether the configured cluster answers)."""
    from pizzashop.kafka.cluster import local_kafka_status
    from pizzashop.kafka.reaching import broker_address, check_broker

    settings = settings_of(ctx)
    if not settings.uses_local_broker:
        check_broker(settings)
        click.echo(f"The Kafka cluster at {broker_address(settings)} answers (no local broker)")
        return
    status = local_kafka_status(settings)
    if not status.nodes:
        click.echo("Apache Kafka is not set up in this state folder")
    for node in status.nodes:
        state = f"running (pid {node.pid})" if node.pid else "stopped"
        click.echo(f"Apache Kafka {status.version} node {node.node_id} on {node.address}: {state}")
    ctx.exit(0 if status.running else 1)


@main.group()
def topics() -> None:
    """The shop's Kafka topics."""


@topics.command("create")
@click.option(
    "--partitions", type=click.IntRange(1), default=None, help="Default: 6 (or the setting)."
)
@click.option("--replication-factor", type=click.IntRange(1), default=None)
@click.pass_context
def topics_create(
    ctx: click.Context, partitions: int | None, replication_factor: int | None
) -> None:
    """Create the topics of the wire contract and the dead-letter topic (idempotent)."""
    from pizzashop.kafka.topics import TopicsNotCoPartitioned, create_topics

    try:
        created = create_topics(
            settings_of(ctx), partitions=partitions, replication_factor=replication_factor
        )
    except TopicsNotCoPartitioned as e:
        raise ShopError(str(e)) from None
    for name in created:
        click.echo(name)


@main.group()
def schemas() -> None:
    """The wire contract as JSON Schema, for producers in other languages."""


@schemas.command("write")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
)
@click.option(
    "--allow-breaking",
    is_flag=True,
    help="Write even a change that older records would not pass (for a change made on purpose).",
)
def schemas_write(directory: Path, allow_breaking: bool) -> None:
    """Write each topic's key and value schema, made from the contract; refuse a change that
    values allowed before would not pass."""
    from pizzashop.schemas import IncompatibleSchemas, write_schemas

    try:
        written = write_schemas(directory, allow_breaking)
    except IncompatibleSchemas as e:
        raise ShopError(f"{e} (nothing written; --allow-breaking writes it anyway)") from None
    for path in written:
        click.echo(path)


# --- the dead-letter topic -----------------------------------------------------------------


@main.group()
def dlq() -> None:
    """Events parked in the dead-letter topic, and replaying them after a fix."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1), default=None)
@click.pass_context
def dlq_list(ctx: click.Context, limit: int | None) -> None:
    """Show what is in pizza-dlq: where each event came from and why it was parked."""
    from pizzashop.observe.inert import inert
    from pizzashop.runtime.deadletters import read_dead_letters

    letters = read_dead_letters(settings_of(ctx), limit)
    if not letters:
        click.echo("The dead-letter topic is empty")
    for letter in letters:
        value = (letter.value or b"")[:120].decode("utf-8", "replace")
        click.echo(
            inert(
                f"{letter.position}  from {letter.source_topic}[{letter.source_partition}]"
                f"@{letter.source_offset} by {letter.service}: {letter.error}"
            )
            + f"\n    key={(letter.key or b'').decode('utf-8', 'replace')!r} value={value!r}"
        )


@dlq.command("replay")
@click.argument("position")
@click.pass_context
def dlq_replay(ctx: click.Context, position: str) -> None:
    """Produce the event at POSITION (PARTITION:OFFSET, as `dlq list` shows) to its source topic again."""
    from pizzashop.runtime.deadletters import replay

    try:
        letter = replay(settings_of(ctx), position)
    except (ValueError, LookupError) as e:
        raise ShopError(str(e)) from None
    click.echo(f"Replayed {position} to {letter.source_topic}")


# --- reading the read model ----------------------------------------------------------------


@main.group()
def readmodel() -> None:
    """Rebuild the read model from the log, or check it against the log."""


@readmodel.command("rebuild")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def readmodel_rebuild(ctx: click.Context, quiet: bool) -> None:
    """Build a new read model from the topics while the shop runs, then switch to it.

    The status service and the web app move to it on their own; the old one is left in place.
    """
    from pizzashop.readmodel.rebuilding import rebuild

    rebuilt = rebuild(settings_of(ctx), show_progress=not quiet)
    click.echo(
        f"Read model generation {rebuilt.generation} is live ({rebuilt.where}): "
        f"{rebuilt.events} events in {rebuilt.seconds:.1f}s, {rebuilt.rate:,.0f} events/s"
    )


@readmodel.command("verify")
@click.pass_context
def readmodel_verify(ctx: click.Context) -> None:
    """Compare the live read model with one rebuilt from the log; exit 1 on any difference."""
    from pizzashop.observe.inert import inert
    from pizzashop.readmodel.rebuilding import verify

    existing_readmodel(settings_of(ctx)).close()  # says where none is, rather than make one
    differences = verify(settings_of(ctx))
    for difference in differences:
        click.echo(inert(difference.line()))
    if differences:
        raise ShopError(f"{len(differences)} order(s) differ from the log")
    click.echo("The read model agrees with the log.")


@main.command()
@click.option("--customer", default=None, help="Only this customer's orders.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def orders(ctx: click.Context, customer: str | None, limit: int, as_json: bool) -> None:
    """List orders from the read model, newest first."""
    from pizzashop.cli.views import order_line

    views = existing_readmodel(settings_of(ctx)).orders
    found = views.orders_of(customer, limit) if customer else views.recent_orders(limit)
    if as_json:
        click.echo(json.dumps([v.as_dict() for v in found], indent=2))
    elif not found:
        click.echo("No orders yet")
    for view in [] if as_json else found:
        click.echo(order_line(view))


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def shop_status(ctx: click.Context, as_json: bool) -> None:
    """Every part of the running shop: health, partitions, lag, orders in the works.

    Exits 1 when a part is not ready or does not answer."""
    from pizzashop.cli.status import NoShopRunning, orders_line, part_states, table
    from pizzashop.readmodel.store import open_readmodel, readmodel_exists

    settings = settings_of(ctx)
    try:
        parts = part_states(settings)
    except NoShopRunning as e:
        raise ShopError(str(e)) from None
    counts = {}
    if readmodel_exists(settings.readmodel_url):
        counts = open_readmodel(settings.readmodel_url).pipeline.orders_by_status()
    if as_json:
        orders = {str(int(status)): count for status, count in counts.items()}
        click.echo(json.dumps({"parts": [p.as_dict() for p in parts], "orders": orders}))
    else:
        click.echo("\n".join([*table(parts), orders_line(counts)]))
    ctx.exit(0 if all(p.health == "ready" for p in parts) else 1)


@main.command("order-status", context_settings=ORDER_ID_MAY_START_WITH_A_DASH)
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def order_status(ctx: click.Context, order_id: str, as_json: bool) -> None:
    """Show one order with its status history."""
    from pizzashop.cli.views import order_report

    view = existing_readmodel(settings_of(ctx)).orders.get_order(order_id)
    if view is None:
        raise ShopError(f"no order {order_id!r} in the read model")
    click.echo(json.dumps(view.as_dict(), indent=2) if as_json else order_report(view))


@main.command(context_settings=ORDER_ID_MAY_START_WITH_A_DASH)
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def trace(ctx: click.Context, order_id: str, as_json: bool) -> None:
    """Show every record of one order in every topic: where, when, who wrote it, its trace id.

    Reads only the order's partition of each topic, around the times the read model knows."""
    from pizzashop.cli.views import story_report
    from pizzashop.operator.story import StoryUnreadable, read_story

    settings = settings_of(ctx)
    view = existing_readmodel(settings).orders.get_order(order_id)
    if view is None:
        raise ShopError(
            f"no order {order_id!r} in the read model, so no time to look for it in Kafka"
        )
    try:
        records = read_story(settings, view)
    except StoryUnreadable as e:
        raise ShopError(f"the records of order {order_id} could not be read: {e}") from None
    if not records:
        raise ShopError(f"no record of order {order_id!r} in Kafka around its time")
    if as_json:
        shown = {"order_id": order_id, "records": [r.as_dict() for r in records]}
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        click.echo(story_report(order_id, records))


@main.command(context_settings=ORDER_ID_MAY_START_WITH_A_DASH)
@click.argument("order_id")
@click.pass_context
def retry(ctx: click.Context, order_id: str) -> None:
    """Resume a stuck order at its missing step. A step already done is not done again."""
    from pizzashop.commands.ordering import (
        OrderNotAccepted,
        OrderTaker,
        OrderUnconfirmed,
        events_to_resume,
    )
    from pizzashop.kafka.reaching import check_broker

    settings = settings_of(ctx)
    view = existing_readmodel(settings).orders.get_order(order_id)
    if view is None or view.order is None:
        raise ShopError(f"no order {order_id!r} in the read model to retry")
    if view.status.is_final:
        raise ShopError(f"order {order_id} is final ({view.status.value}: {view.status.text})")
    check_broker(settings)
    taker = OrderTaker(settings)
    try:
        for event in events_to_resume(view):
            taker.send(event, view.partition_to_send_to)
            click.echo(f"Sent {type(event).__name__} for order {order_id} again")
    except (OrderNotAccepted, OrderUnconfirmed) as e:
        raise ShopError(f"order not retried: {e}") from None


@main.command(context_settings=ORDER_ID_MAY_START_WITH_A_DASH)
@click.argument("order_id")
@click.option(
    "--wait",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait for the kitchen's decision.",
)
@click.pass_context
def cancel(ctx: click.Context, order_id: str, wait: float) -> None:
    """Cancel an order, if its pizza is not out of the oven yet. Exit status 0 once cancelled,
    1 when too late, not decided within the wait, or unknown."""
    from pizzashop.commands.cancelling import Outcome
    from pizzashop.commands.desk import ReadModelOrders, desk_for_one_command
    from pizzashop.commands.ordering import OrderNotAccepted, OrderUnconfirmed

    settings = settings_of(ctx)
    views = existing_readmodel(settings).orders
    view = views.get_order(order_id)
    if view is None or view.order is None:
        raise ShopError(f"no order {order_id!r} in the read model to cancel")
    desk = desk_for_one_command(settings, ReadModelOrders(views.get_order), wait)
    try:
        answer = asyncio.run(desk.cancel(view))
    except (OrderNotAccepted, OrderUnconfirmed) as e:
        raise ShopError(f"order {order_id} not cancelled: {e}") from None
    click.echo(f"Order {order_id}: {answer.text}")
    ctx.exit(0 if answer.outcome is Outcome.CANCELLED else 1)


@main.command()
@click.pass_context
def web(ctx: click.Context) -> None:
    """Run the web app (http://127.0.0.1:8000 by default)."""
    from pizzashop.kafka.reaching import check_broker
    from pizzashop.observe.logs import configure_logging

    settings = settings_of(ctx)
    configure_logging("web", settings.log_level, settings.log_format)
    check_broker(settings)  # away at the start: a wrong address, most likely; said at once
    from pizzashop.web.app import serve_web  # the web stack takes seconds to load: after that

    serve_web(settings)


# --- measuring -----------------------------------------------------------------------------

REPORT_FILE = click.Path(path_type=Path, dir_okay=False)
F = TypeVar("F", bound=Callable[..., Any])


def number_option(name: str, least: float, default: float, help: str) -> Callable[[F], F]:
    """A number with a lower bound and a default that --help shows."""
    return click.option(
        name, type=click.FloatRange(least), default=default, show_default=True, help=help
    )


@main.command()
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
@click.pass_context
def bench(
    ctx: click.Context,
    orders: int | None,
    rate: float | None,
    duration: float | None,
    time_scale: float,
    capacity: int | None,
    partitions: int | None,
    guarantee: str | None,
    reference: bool,
    peer_names: tuple[str, ...],
    peer_list: str | None,
    json_path: Path | None,
    plot_path: Path | None,
    timeout: float,
    warm_up: float,
    keep_state: bool,
    metrics: bool | None,
    tracing: bool,
    through: str,
    concurrency: int,
    watchers: int | None,
    idle: float,
) -> None:
    """Measure the shop: place a rush of orders through the real broker and follow each one.

    Starts the four services (and a local broker, unless a cluster is configured) itself.
    """
    try:
        from pizzashop.bench import BenchError, BenchPlan, run_bench, run_watchers
        from pizzashop.bench.pipelines import PEERS
        from pizzashop.bench.report import write_json
    except ImportError as e:
        raise ShopError(
            f"the bench needs its extras ({e.name} is missing): pip install 'pizzashop[bench]'"
        ) from None
    if watchers is not None:
        report = run_watchers(settings_of(ctx), watchers, idle)
        click.echo(report.table())
        if json_path is not None:
            write_json(json_path, report.as_json())
        return
    if (orders is None) == (rate is None) or (rate is None) != (duration is None):
        raise ShopError("give --orders N, or --rate R with --duration S")
    peers = [*peer_names, *(n.strip() for n in (peer_list or "").split(",") if n.strip())]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        raise ShopError(f"no peer named {', '.join(unknown)} (known: {', '.join(PEERS)})")
    settings = settings_of(ctx).replace(time_scale=time_scale)
    if capacity is not None:
        settings = settings.replace(capacity=capacity)
    if partitions is not None:
        settings = settings.replace(partitions=partitions)
    if guarantee is not None:
        settings = settings.replace(processing_guarantee=guarantee)
    if metrics is not None:
        settings = settings.replace(metrics=metrics)
    plan = BenchPlan(
        orders=orders,
        rate=rate,
        duration=duration,
        partitions=partitions,
        reference=reference,
        peers=tuple(dict.fromkeys(peers)),  # each once, in the order given
        timeout=timeout,
        warm_up=warm_up,
        keep_state=keep_state,
        tracing=tracing,
        through_web=through == "web",
        concurrency=concurrency,
    )
    try:
        result = run_bench(settings, plan)
    except BenchError as e:
        raise ShopError(str(e)) from None
    click.echo(result.table())
    if json_path is not None:
        result.write_json(json_path)
    if plot_path is not None:
        result.write_plot(plot_path)
    if not result.all_delivered:
        raise ShopError(f"not every order was delivered; logs kept in {result.state_dir}")


@main.command()
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
    import random

    from pizzashop.chaos import ChaosPlan, run_chaos
    from pizzashop.kafka.jars import KafkaSetupError

    if rebalance_runs is not None:
        _measure_rebalances(settings_of(ctx), rebalance_runs, json_path)
        return

    if state_dir is not None and state_dir.exists() and any(state_dir.iterdir()):
        raise ShopError(f"--state-dir {state_dir} is not empty: a run starts from nothing")
    plan = ChaosPlan(
        seed=random.randrange(1_000_000) if seed is None else seed,
        duration=duration,
        rate=rate,
        cancel_share=cancel_share,
        state_dir=state_dir,
    )
    # A TERM, like a Ctrl-C, unwinds the run, which stops every process and node it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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


def _measure_rebalances(settings: Settings, runs: int, json_path: Path | None) -> None:
    from pizzashop.chaos.rebalance import measure_rebalances

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    pauses = measure_rebalances(settings, runs, click.echo)
    if json_path is not None:
        json_path.write_text(json.dumps([p.as_dict() for p in pauses], indent=2) + "\n")
