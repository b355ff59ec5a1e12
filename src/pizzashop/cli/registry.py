"""The local Schema Registry from the terminal (`registry start|stop|status`), and the
contract's schemas registered in the configured one (`schemas register`)."""

from __future__ import annotations

import click

from pizzashop.cli.common import ShopError, settings_of
from pizzashop.config import registry_client_config
from pizzashop.kafka.jars import KafkaSetupError
from pizzashop.registry.client import (
    COMPATIBILITY,
    check_registry,
    configured_registry,
    register_schemas,
    subject_of,
)
from pizzashop.registry.local import LocalRegistry, start_local_registry


@click.group()
def registry() -> None:
    """The local Schema Registry (Apicurio Registry, with Confluent's REST API)."""


@registry.command("start")
@click.pass_context
def registry_start(ctx: click.Context) -> None:
    """Start the local registry in the background and print the setting that points at it."""
    try:
        local = start_local_registry(settings_of(ctx))
    except KafkaSetupError as e:
        raise ShopError(str(e)) from None
    click.echo(f"export PIZZASHOP_SCHEMA_REGISTRY_URL={local.url}")


@registry.command("stop")
@click.pass_context
def registry_stop(ctx: click.Context) -> None:
    """Stop the local registry gracefully (its schemas stay, in the state folder)."""
    stopped = LocalRegistry.of(settings_of(ctx)).stop()
    click.echo("the Schema Registry stopped" if stopped else "the Schema Registry is not running")


@registry.command("status")
@click.pass_context
def registry_status(ctx: click.Context) -> None:
    """Say whether the local registry runs, and where; and whether the configured one answers."""
    settings = settings_of(ctx)
    local = LocalRegistry.of(settings)
    pid = local.pid()
    state = f"running (pid {pid})" if pid else "stopped"
    click.echo(f"the local Schema Registry on {local.url}: {state}")
    configured = registry_client_config(settings)
    if configured is None:
        click.echo("no Schema Registry is configured: records are plain JSON")
        ctx.exit(0 if pid else 1)
    check_registry(settings)
    click.echo(f"the configured Schema Registry at {configured['url']} answers")


@click.command("register")
@click.pass_context
def schemas_register(ctx: click.Context) -> None:
    """Register each topic's value schema in the configured Schema Registry, under its topic's
    subject, and set the subject to BACKWARD: a breaking change is then refused there too."""
    found = configured_registry(settings_of(ctx))
    if found is None:
        raise ShopError(
            "no Schema Registry is configured: set PIZZASHOP_SCHEMA_REGISTRY_URL "
            "(pizzashop registry start prints it for the local one)"
        )
    for topic, schema_id in register_schemas(found, set_compatibility=True).items():
        click.echo(f"{subject_of(topic)}: schema id {schema_id}, {COMPATIBILITY}")
