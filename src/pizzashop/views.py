"""How an order from the read model reads in a terminal or as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pizzashop.readmodel import OrderView


def clock(timestamp_ms: int | None) -> str:
    if timestamp_ms is None:
        return "--:--:--"
    return datetime.fromtimestamp(timestamp_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def order_line(view: OrderView) -> str:
    what = f"{view.order.name}: {view.order.main_topping}" if view.order else "(order not seen yet)"
    return f"{view.order_id:24}  {clock(view.placed_at)}  {view.status.value}  {view.status.text:40}  {what}"


def order_report(view: OrderView) -> str:
    lines = [f"Order {view.order_id}"]
    if view.order is not None:
        pizza = view.order
        extras = ", ".join(pizza.extra_toppings) or "no extras"
        lines.append(f"  for {pizza.name}: {pizza.sauce}, {pizza.cheese}, {pizza.main_topping}, {extras}")
    lines.append(f"  now: {view.status.value} {view.status.text}")
    lines.extend(f"  {clock(e.timestamp)}  {e.status.value}  {e.status.text}" for e in view.history)
    return "\n".join(lines)


def order_as_dict(view: OrderView) -> dict[str, Any]:
    return {
        "order_id": view.order_id,
        "customer_id": view.customer_id,
        "order": view.order.model_dump() if view.order else None,
        "placed_at": view.placed_at,
        "status": view.status.value,
        "status_text": view.status.text,
        "history": [{"status": e.status.value, "text": e.status.text, "timestamp": e.timestamp}
                    for e in view.history],
    }
