"""Following one order in the read model from the terminal until it is final."""

from __future__ import annotations

import time
from collections.abc import Callable

from pizzashop.config import Settings
from pizzashop.contract import Status
from pizzashop.operator.display import clock
from pizzashop.readmodel.generations import FOLLOW_SECONDS
from pizzashop.readmodel.store import open_readmodel

CHECK_EVERY = 0.2


def follow_order(
    settings: Settings, order_id: str, timeout: float, show: Callable[[str], None]
) -> Status | None:
    """Show each new status of the order as it arrives; its final status (delivered,
    cancelled, not made), or None if it has none within `timeout` seconds."""
    # A rebuild may switch the read model meanwhile: followed.
    read_model = open_readmodel(settings.readmodel_url, follow_every=FOLLOW_SECONDS)
    deadline = time.monotonic() + timeout
    seen = 0
    try:
        while time.monotonic() < deadline:
            for entry in read_model.orders.history_after(order_id, seen):
                show(f"  {clock(entry.timestamp)}  {entry.status.value}  {entry.status.text}")
                seen = entry.seq
            view = read_model.orders.get_order(order_id)
            if view is not None and view.status.is_final:
                return view.status
            time.sleep(CHECK_EVERY)  # the read model has no change feed: look again shortly
    finally:
        read_model.close()
    return None
