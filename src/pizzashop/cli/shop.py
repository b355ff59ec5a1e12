"""Running the shop: all of it (`up`), one service, or the web app."""

from __future__ import annotations

import click

from pizzashop.cli.common import ShopError, settings_of
from pizzashop.contract import SERVICES
from pizzashop.kafka.jars import KafkaSetupError
from pizzashop.kafka.reaching import check_broker
from pizzashop.kafka.topics import TopicsNotCoPartitioned
from pizzashop.local.shop import run_shop
from pizzashop.observe import tracing
from pizzashop.observe.logs import configure_logging
from pizzashop.registry import use_schema_registry
from pizzashop.runtime import run_service
from pizzashop.services import build_service


@click.command()
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
@click.option(
    "--registry",
    is_flag=True,
    help="Start the local Schema Registry too: every record is framed with its schema's id.",
)
@click.pass_context
def up(ctx: click.Context, no_web: bool, instances: int, nodes: int, registry: bool) -> None:
    """Run the whole shop in the foreground (broker if needed, topics, services, web) until Ctrl-C."""
    try:
        code = run_shop(
            settings_of(ctx),
            with_web=not no_web,
            instances=instances,
            nodes=nodes,
            registry=registry,
        )
    except (KafkaSetupError, TopicsNotCoPartitioned) as e:
        raise ShopError(str(e)) from None
    ctx.exit(code)


@click.command()
@click.argument("name", type=click.Choice(list(SERVICES)))
@click.pass_context
def service(ctx: click.Context, name: str) -> None:
    """Run one service. Run it twice and the two instances share the partitions."""
    settings = settings_of(ctx)
    configure_logging(name, settings.log_level, settings.log_format)
    tracing.start_tracing(name)
    try:
        run_service(build_service(name, settings), settings)
    except TopicsNotCoPartitioned as e:
        raise ShopError(f"{name} cannot start: {e}") from None


@click.command()
@click.pass_context
def web(ctx: click.Context) -> None:
    """Run the web app (http://127.0.0.1:8000 by default)."""
    settings = settings_of(ctx)
    configure_logging("web", settings.log_level, settings.log_format)
    check_broker(settings)  # away at the start: a wrong address, most likely; said at once
    use_schema_registry(settings)
    # The web stack takes seconds to load, so after that; and a service, whose command lives
    # here too, never loads it.
    from pizzashop.web.app import serve_web

    serve_web(settings)
