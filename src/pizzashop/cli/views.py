"""How an order from the read model reads in a terminal or as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pizzashop.observe.inert import inert
from pizzashop.operator.display import clock
from pizzashop.readmodel import OrderView

if TYPE_CHECKING:
    from pizzashop.operator.story import StoryRecord

VALUE_CHARACTERS = 70  # of each record's value in a terminal; `--json` has it whole


def order_line(view: OrderView) -> str:
    what = f"{view.order.name}: {view.order.main_topping}" if view.order else "(order not seen yet)"
    return inert(
        f"{view.order_id:24}  {clock(view.placed_at, with_date=True)}  {view.status.value}  "
        f"{view.status_text:40}  {what}"
    )


def order_report(view: OrderView) -> str:
    lines = [f"Order {inert(view.order_id)}"]
    if view.order is not None:
        pizza = view.order
        extras = ", ".join(pizza.extra_toppings) or "no extras"
        lines.append(
            inert(
                f"  for {pizza.name}: {pizza.sauce}, {pizza.cheese}, {pizza.main_topping}, {extras}"
            )
        )
    lines.append(f"  now: {view.status.value} {inert(view.status_text)}")
    lines.extend(
        f"  {clock(e.timestamp, with_date=True)}  {e.status.value}  {e.status.text}"
        for e in view.history
    )
    return "\n".join(lines)


def story_report(order_id: str, records: list[StoryRecord]) -> str:
    """An order's records, one a line: when, how long after the one before, where, who wrote
    it, its trace id and its value."""
    lines = [f"Order {inert(order_id)}: {len(records)} records"]
    for record in records:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        value = "(no value)" if record.value is None else record.value or "(empty)"
        if len(value) > VALUE_CHARACTERS:
            value = value[: VALUE_CHARACTERS - 1] + "…"
        lines.append(
            inert(
                f"  {record.time}  {record.since_previous or '':>9}  {where:28}  "
                f"{record.service or '?':9}  {record.trace_id or '-':32}  {value}"
            )
        )
    return "\n".join(lines)
