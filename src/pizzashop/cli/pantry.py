"""The pantry from the terminal: how much of each ingredient is left, as the read model has it,
and a restock sent through the command side."""

from __future__ import annotations

import asyncio

import click

from pizzashop import menu
from pizzashop.cli.common import ShopError, existing_readmodel, settings_of
from pizzashop.commands.desk import NotRestockable, desk_for_one_command
from pizzashop.commands.ordering import OrderNotAccepted, OrderUnconfirmed
from pizzashop.contract.pantry import MAX_RESTOCK
from pizzashop.readmodel.pantry import stock_levels

# "-5" is an amount to refuse in one line, not an unknown option.
AMOUNT_MAY_BE_NEGATIVE = {"ignore_unknown_options": True}


class RestockRefused(ShopError):
    """An ingredient not on the menu or an amount out of bounds: like a usage error, exit 2."""

    exit_code = 2


@click.group(invoke_without_command=True)
@click.pass_context
def pantry(ctx: click.Context) -> None:
    """How much of each ingredient is left (the read model's word; the starting stock for
    one that never moved), or `pantry restock INGREDIENT N`."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_of(ctx)
    stored = existing_readmodel(settings).orders.stock()
    levels = stock_levels(stored, settings)
    width = max(len(ingredient) for ingredient in levels)
    for ingredient, left in levels.items():
        mark = "  sold out" if left == 0 else ""
        click.echo(f"{ingredient:{width}}  {left:>9,}{mark}")


@pantry.command(context_settings=AMOUNT_MAY_BE_NEGATIVE)
@click.argument("ingredient")
@click.argument("amount")
@click.pass_context
def restock(ctx: click.Context, ingredient: str, amount: str) -> None:
    """Add AMOUNT of INGREDIENT (as the menu names it) to the pantry. Exit status 0 once the
    broker has it, 2 when refused (nothing is sent)."""
    named, count = on_the_menu(ingredient), restock_amount(amount)
    desk = desk_for_one_command(settings_of(ctx))  # the broker away: nothing sent
    try:
        sent = asyncio.run(desk.restock(named, count))
    except NotRestockable as e:
        raise RestockRefused(f"not restocked: {e}") from None
    except (OrderNotAccepted, OrderUnconfirmed) as e:
        raise ShopError(f"{named} not restocked: {e}") from None
    click.echo(f"Restocked {sent.ingredient}: {sent.amount:,} more sent to the pantry")


def on_the_menu(ingredient: str) -> str:
    """The menu's own name of an ingredient, whatever its case; RestockRefused if none."""
    by_name = {known.casefold(): known for known in menu.INGREDIENTS}
    named = by_name.get(ingredient.strip().casefold())
    if named is None:
        raise RestockRefused(
            f"not restocked: {ingredient!r} is not an ingredient on the menu "
            "(`pizzashop pantry` lists them)"
        )
    return named


def restock_amount(amount: str) -> int:
    """A whole number from 1 to MAX_RESTOCK; RestockRefused otherwise."""
    try:
        count = int(amount)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_RESTOCK:
        raise RestockRefused(
            f"not restocked: the amount is a whole number from 1 to {MAX_RESTOCK:,}, not {amount!r}"
        )
    return count
