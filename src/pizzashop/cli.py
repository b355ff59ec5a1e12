"""The `pizzashop` command: thin, it reads the settings once and calls the modules that do the work."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from pizzashop.config import ConfigError, Settings, load_settings


class ShopError(click.ClickException):
    """A problem the user can fix, shown as one clear line."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="A TOML config file (default: ./pizzashop.toml if present, or $PIZZASHOP_CONFIG).")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """pizzashop: a pizza takeaway shop run as event-driven microservices on Apache Kafka."""
    try:
        ctx.obj = load_settings(config_file)
    except ConfigError as e:
        raise ShopError(str(e)) from None
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(message)s",
    )


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    assert settings is not None, "main() stores the settings"
    return settings


# --- running the shop ----------------------------------------------------------------------


@main.command()
@click.option("--no-web", is_flag=True, help="Run the services without the web app.")
@click.pass_context
def up(ctx: click.Context, no_web: bool) -> None:
    """Run the whole shop in the foreground (broker if needed, topics, services, web) until Ctrl-C."""
    from pizzashop.shop import run_shop

    ctx.exit(run_shop(settings_of(ctx), with_web=not no_web))


@main.command()
@click.argument("name", type=click.Choice(["assemble", "bake", "delivery", "status"]))
@click.pass_context
def service(ctx: click.Context, name: str) -> None:
    """Run one service. Run it twice and the two instances share the partitions."""
    from pizzashop.runtime import configure_logging, run_service
    from pizzashop.services import build_service

    settings = settings_of(ctx)
    configure_logging(name, settings.log_level)
    run_service(build_service(name, settings), settings)
