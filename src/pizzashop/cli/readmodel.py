"""The read model from the terminal: rebuilding it from the log while the shop runs, and
checking it against the log."""

from __future__ import annotations

import click

from pizzashop.cli.common import ShopError, existing_readmodel, settings_of
from pizzashop.observe.inert import inert
from pizzashop.readmodel.rebuilding import rebuild, verify


@click.group()
def readmodel() -> None:
    """Rebuild the read model from the log, or check it against the log."""


@readmodel.command("rebuild")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def readmodel_rebuild(ctx: click.Context, quiet: bool) -> None:
    """Build a new read model from the topics while the shop runs, then switch to it.

    The status service and the web app move to it on their own; the old one is left in place.
    """
    rebuilt = rebuild(settings_of(ctx), show_progress=not quiet)
    click.echo(
        f"Read model generation {rebuilt.generation} is live ({rebuilt.where}): "
        f"{rebuilt.events} events in {rebuilt.seconds:.1f}s, {rebuilt.rate:,.0f} events/s"
    )


@readmodel.command("verify")
@click.pass_context
def readmodel_verify(ctx: click.Context) -> None:
    """Compare the live read model with one rebuilt from the log; exit 1 on any difference."""
    existing_readmodel(settings_of(ctx)).close()  # says where none is, rather than make one
    differences = verify(settings_of(ctx))
    for difference in differences:
        click.echo(inert(difference.line()))
    if differences:
        raise ShopError(f"{len(differences)} order(s) differ from the log")
    click.echo("The read model agrees with the log.")
