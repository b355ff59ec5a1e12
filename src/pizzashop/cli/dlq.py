"""The dead-letter topic from the terminal: what is parked in it and why, and replaying an
event after a fix."""

from __future__ import annotations

import click

from pizzashop.cli.common import ShopError, settings_of
from pizzashop.observe.inert import inert
from pizzashop.runtime.deadletters import read_dead_letters, replay


@click.group()
def dlq() -> None:
    """Events parked in the dead-letter topic, and replaying them after a fix."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1), default=None)
@click.pass_context
def dlq_list(ctx: click.Context, limit: int | None) -> None:
    """Show what is in pizza-dlq: where each event came from and why it was parked."""
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
    try:
        letter = replay(settings_of(ctx), position)
    except (ValueError, LookupError) as e:
        raise ShopError(str(e)) from None
    click.echo(f"Replayed {position} to {letter.source_topic}")
