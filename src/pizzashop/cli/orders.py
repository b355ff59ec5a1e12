"""Orders from the terminal: place one, cancel it, retry a stuck one, list them, and show one
with its status history."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager

import click

from pizzashop import menu
from pizzashop.cli.common import (
    ORDER_ID_MAY_START_WITH_A_DASH,
    ShopError,
    existing_readmodel,
    settings_of,
)
from pizzashop.cli.placing import NOT_PLACED, not_placed
from pizzashop.cli.views import order_line, order_report
from pizzashop.commands.cancelling import Outcome
from pizzashop.commands.desk import ReadModelOrders, desk_for_one_command
from pizzashop.commands.ordering import (
    OrderNotAccepted,
    OrderTaker,
    OrderUnconfirmed,
    PlaceOrder,
    events_to_resume,
    new_idempotency_key,
)
from pizzashop.contract import Status
from pizzashop.kafka.reaching import check_broker
from pizzashop.observe import tracing


@contextmanager
def traced(command: str) -> Iterator[None]:
    """A command that produces records is the root of their traces (while tracing is on)."""
    tracing.start_tracing("cli")
    if not tracing.enabled():
        yield
        return
    try:
        with tracing.tracer().start_as_current_span(command):
            yield
    finally:
        tracing.stop_tracing()


@click.command()
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


@click.command(context_settings=ORDER_ID_MAY_START_WITH_A_DASH)
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


@click.command(context_settings=ORDER_ID_MAY_START_WITH_A_DASH)
@click.argument("order_id")
@click.pass_context
def retry(ctx: click.Context, order_id: str) -> None:
    """Resume a stuck order at its missing step. A step already done is not done again."""
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


@click.command()
@click.option("--customer", default=None, help="Only this customer's orders.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def orders(ctx: click.Context, customer: str | None, limit: int, as_json: bool) -> None:
    """List orders from the read model, newest first."""
    views = existing_readmodel(settings_of(ctx)).orders
    found = views.orders_of(customer, limit) if customer else views.recent_orders(limit)
    if as_json:
        click.echo(json.dumps([v.as_dict() for v in found], indent=2))
    elif not found:
        click.echo("No orders yet")
    for view in [] if as_json else found:
        click.echo(order_line(view))


@click.command("order-status", context_settings=ORDER_ID_MAY_START_WITH_A_DASH)
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def order_status(ctx: click.Context, order_id: str, as_json: bool) -> None:
    """Show one order with its status history."""
    view = existing_readmodel(settings_of(ctx)).orders.get_order(order_id)
    if view is None:
        raise ShopError(f"no order {order_id!r} in the read model")
    click.echo(json.dumps(view.as_dict(), indent=2) if as_json else order_report(view))
