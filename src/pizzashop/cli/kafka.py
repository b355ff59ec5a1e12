"""Kafka from the terminal: the local broker (`kafka`), the shop's topics (`topics`) and the
JSON Schemas and AsyncAPI document of what the shop writes on them (`schemas`)."""

from __future__ import annotations

from pathlib import Path

import click

from pizzashop.asyncapi import write_asyncapi
from pizzashop.cli.common import ShopError, settings_of
from pizzashop.kafka.cluster import local_kafka_status, running_local_kafka, start_local_kafka
from pizzashop.kafka.jars import KafkaSetupError
from pizzashop.kafka.reaching import broker_address, check_broker
from pizzashop.kafka.topics import TopicsNotCoPartitioned, create_topics
from pizzashop.schemas import IncompatibleSchemas, write_schemas


@click.group()
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


@click.group()
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
    try:
        created = create_topics(
            settings_of(ctx), partitions=partitions, replication_factor=replication_factor
        )
    except TopicsNotCoPartitioned as e:
        raise ShopError(str(e)) from None
    for name in created:
        click.echo(name)


class SchemaCommands(click.Group):
    """`schemas`: `register` is loaded when asked for, with the registry's client."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*self.commands, "register"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "register":
            from pizzashop.cli.registry import schemas_register

            return schemas_register
        return self.commands.get(cmd_name)


@click.group(cls=SchemaCommands)
def schemas() -> None:
    """The wire contract as JSON Schema and as an AsyncAPI document, for producers and
    consumers in other languages, and in a Schema Registry."""


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
    """Write each topic's key and value schema, and the AsyncAPI document (asyncapi.yaml),
    made from the contract; refuse a change that values allowed before would not pass."""
    try:
        written = write_schemas(directory, allow_breaking)
    except IncompatibleSchemas as e:
        raise ShopError(f"{e} (nothing written; --allow-breaking writes it anyway)") from None
    for path in [*written, write_asyncapi(directory)]:
        click.echo(path)
