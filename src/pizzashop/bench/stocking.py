"""Enough of every ingredient for every order of a bench. The bench's own broker starts with
a pantry that has never moved (the settings' stock); a broker the pantry has used before keeps
its levels in the pantry's changelog, whatever the settings say, so what is short there is
restocked before the rush, and said."""

from __future__ import annotations

import logging
import secrets

from pizzashop import contract
from pizzashop.commands.ordering import OrderTaker
from pizzashop.config import Settings
from pizzashop.contract import ContractError, Restock, StockLevel, Topic
from pizzashop.kafka.topics import CREATE_TIMEOUT, read_to_end
from pizzashop.menu import INGREDIENTS

log = logging.getLogger("pizzashop.bench")


def recorded_levels(settings: Settings, timeout: float = CREATE_TIMEOUT) -> dict[str, int]:
    """Each ingredient's last level on `pizza-stock`: only those the pantry ever moved."""
    levels = {}
    for message in read_to_end(settings, str(Topic.STOCK), timeout=timeout):
        try:
            event = contract.decode(str(Topic.STOCK), message.key(), message.value())
        except ContractError:
            continue  # not a level: nothing the pantry holds
        if isinstance(event, StockLevel):
            levels[event.ingredient] = event.left
    return levels


def stock_for_the_rush(settings: Settings, needed: int) -> dict[str, int]:
    """Restocks each ingredient the pantry holds fewer than `needed` of; what it sent."""
    short = {
        ingredient: needed - left
        for ingredient, left in recorded_levels(settings).items()
        if ingredient in INGREDIENTS and left < needed
    }
    if not short:
        return {}
    taker = OrderTaker(settings)
    try:
        for ingredient, amount in short.items():
            taker.send(Restock(f"bench-{secrets.token_hex(8)}", ingredient, amount), 0)
    finally:
        taker.close()
    log.warning(
        "The pantry on this broker was short for %d orders: restocked %s",
        needed,
        ", ".join(f"{amount:,} {ingredient}" for ingredient, amount in sorted(short.items())),
    )
    return short
