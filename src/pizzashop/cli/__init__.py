"""The `pizzashop` command: thin, it reads the settings once and calls the modules that do the work.

Each command group lives in a module of its own, imported only when one of its commands runs
(or --help lists it): `pizzashop service bake` then loads what a service needs, never the web
app's stack or the bench's.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import click
from confluent_kafka import KafkaException

from pizzashop.cli.common import ShopError
from pizzashop.config import ConfigError, Settings, load_settings
from pizzashop.kafka.reaching import RegistryRefused, Unreachable, broker_address
from pizzashop.readmodel import ReadModelUnusable

log = logging.getLogger("pizzashop.cli")

# Each command, as "module:name" in this package.
COMMANDS = {
    "up": "shop:up",
    "service": "shop:service",
    "web": "shop:web",
    "status": "operator:shop_status",
    "trace": "operator:trace",
    "order": "orders:order",
    "cancel": "orders:cancel",
    "retry": "orders:retry",
    "orders": "orders:orders",
    "order-status": "orders:order_status",
    "kafka": "kafka:kafka",
    "topics": "kafka:topics",
    "schemas": "kafka:schemas",
    "registry": "registry:registry",
    "dlq": "dlq:dlq",
    "readmodel": "readmodel:readmodel",
    "pantry": "pantry:pantry",
    "bench": "bench:bench",
    "chaos": "chaos:chaos",
}


class ShopCommands(click.Group):
    """The shop's commands, each loaded from its module when asked for. Every command's known
    failures become one line (the whole story at DEBUG): the one place where a broker or a
    database that is away, or a bad setting, is told to the user."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        assert isinstance(command, click.Command), f"{COMMANDS[cmd_name]} is a click command"
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (Unreachable, RegistryRefused, ReadModelUnusable, ConfigError, TimeoutError) as e:
            log.debug("%s failed:", ctx.invoked_subcommand, exc_info=True)
            raise ShopError(str(e)) from e
        except KafkaException as e:
            log.debug("%s failed:", ctx.invoked_subcommand, exc_info=True)
            raise ShopError(kafka_failure(ctx, e)) from e


def kafka_failure(ctx: click.Context, error: Exception) -> str:
    """A Kafka error the commands do not expect, in one line naming the broker."""
    settings = ctx.find_object(Settings)
    where = "" if settings is None else f" at {broker_address(settings)}"
    reason = error.args[0].str() if error.args and hasattr(error.args[0], "str") else str(error)
    return f"the Kafka broker{where} failed: {reason} (PIZZASHOP_LOG_LEVEL=DEBUG shows more)"


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
