"""What `pizzashop order` says when the order desk does not place the order: one line each."""

from __future__ import annotations

from pizzashop.commands.ordering import (
    InvalidOrder,
    OrderNotAccepted,
    OrderUnconfirmed,
    UnusableIdempotencyKey,
)
from pizzashop.kafka.reaching import Unreachable

# What keeps an order from being placed, from the command's input to the broker's answer.
NOT_PLACED = (UnusableIdempotencyKey, InvalidOrder, Unreachable, OrderNotAccepted, OrderUnconfirmed)


def not_placed(error: Exception, key: str) -> str:
    """Why the order was not placed, and whether trying again with the same key is safe."""
    if isinstance(error, UnusableIdempotencyKey):
        return f"--idempotency-key: {error}"
    if isinstance(error, InvalidOrder):
        return str(error)
    if isinstance(error, OrderUnconfirmed):
        return (
            f"order {error.order_id} not confirmed: {error}. It may still arrive; to try again "
            f"safely, run the same command with --idempotency-key {key}"
        )
    return f"order not placed: {error}"
