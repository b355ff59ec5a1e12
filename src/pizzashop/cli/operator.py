"""The operator's views from the terminal: every part of the running shop (`status`), and one
order's records through every topic (`trace`).

`pizzashop up` writes which parts it runs and where each shows itself (shop.parts_file); each
part answers `status` for itself on its /readyz, so that reads no Kafka and no log. The orders
come from the read model, when there is one where the settings point.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pizzashop.cli.common import (
    ORDER_ID_MAY_START_WITH_A_DASH,
    ShopError,
    existing_readmodel,
    settings_of,
)
from pizzashop.cli.views import story_report
from pizzashop.config import Settings
from pizzashop.contract import Status
from pizzashop.local.shop import parts_file
from pizzashop.operator.story import StoryUnreadable, read_story
from pizzashop.readmodel.store import open_readmodel, readmodel_exists

ASK_TIMEOUT = 2.0


@dataclass(frozen=True)
class PartState:
    name: str
    address: str
    answer: dict[str, Any] | None  # its /readyz, or None when it did not answer

    @property
    def health(self) -> str:
        if self.answer is None:
            return "down"
        return "ready" if self.answer.get("ready") else "not ready"

    def as_dict(self) -> dict[str, Any]:
        return {"part": self.name, "address": self.address, "health": self.health,
                **(self.answer or {})}  # fmt: skip


class NoShopRunning(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no shop is running from {path.parent} (there is no {path.name}, which "
            "`pizzashop up` writes there); start one with `pizzashop up`, or point "
            "PIZZASHOP_STATE_DIR at the running shop's folder"
        )


def part_states(settings: Settings) -> list[PartState]:
    path = parts_file(settings)
    try:
        addresses: dict[str, str] = json.loads(path.read_text())["parts"]
    except FileNotFoundError:
        raise NoShopRunning(path) from None
    return [PartState(name, address, ask(address)) for name, address in addresses.items()]


def ask(address: str) -> dict[str, Any] | None:
    """A part's readiness, ready or not (503 carries it too); None if nothing answers."""
    try:
        with urllib.request.urlopen(f"{address}/readyz", timeout=ASK_TIMEOUT) as answer:
            body = answer.read()
    except urllib.error.HTTPError as refused:
        body = refused.read()
    except (OSError, TimeoutError):
        return None
    try:
        found: dict[str, Any] = json.loads(body)
    except ValueError:
        return None
    return found


COLUMNS = "{:<11} {:<10} {:>10} {:>6} {:>12}  {}"


def table(parts: list[PartState]) -> list[str]:
    lines = [COLUMNS.format("part", "health", "partitions", "lag", "in the works", "address")]
    for part in parts:
        answer = part.answer or {}
        lines.append(
            COLUMNS.format(
                part.name,
                part.health,
                _shown(answer.get("partitions")),
                _shown(answer.get("lag")),
                _shown(answer.get("orders_in_the_works")),
                part.address,
            )
        )
        lines.extend(f"  - {why}" for why in answer.get("missing", []))
    return lines


def _shown(value: object) -> str:
    return "" if value is None else str(value)


def orders_line(counts: dict[Status, int]) -> str:
    shown = [f"{counts.get(s, 0)} {s.name.lower().replace('_', ' ')}" for s in Status]
    return "Orders: " + ", ".join(shown)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def shop_status(ctx: click.Context, as_json: bool) -> None:
    """Every part of the running shop: health, partitions, lag, orders in the works.

    Exits 1 when a part is not ready or does not answer."""
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


@click.command(context_settings=ORDER_ID_MAY_START_WITH_A_DASH)
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def trace(ctx: click.Context, order_id: str, as_json: bool) -> None:
    """Show every record of one order in every topic: where, when, who wrote it, its trace id.

    Reads only the order's partition of each topic, around the times the read model knows."""
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
