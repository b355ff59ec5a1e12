"""What became of a cancel: assemble decides each race between a cancel and the assembly
(services/assemble.py); the desk (desk.py) only asks on `pizza-cancel`, then reads the outcome
back from the read model, as following an order does, for a few seconds at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pizzashop.contract import Status
from pizzashop.readmodel import OrderView

DECISION_WAIT = 5.0  # seconds a front door waits for assemble's decision before it answers
CHECK_EVERY = 0.1  # the read model has no change feed: look again this often


class Outcome(StrEnum):
    CANCELLED = "cancelled"
    TOO_LATE = "too-late"  # assembled already: it goes on to the customer
    NOT_MADE = "not-made"  # rejected (not on the menu, sold out): there is nothing to cancel
    UNDECIDED = "undecided"  # asked; assemble has not decided within the wait


OUTCOME_TEXTS: dict[Outcome, str] = {
    Outcome.CANCELLED: "cancelled",
    Outcome.TOO_LATE: "too late: your pizza is made and in the oven",
    Outcome.NOT_MADE: "nothing to cancel: the order was not made",
    Outcome.UNDECIDED: "not decided yet: the kitchen has the cancel and decides it shortly",
}


@dataclass(frozen=True)
class CancelAnswer:
    outcome: Outcome
    view: OrderView  # the order as the read model showed it last

    @property
    def text(self) -> str:
        if self.outcome is Outcome.TOO_LATE and self.view.status is Status.DELIVERED:
            return "too late: your pizza was delivered"
        if self.outcome is Outcome.TOO_LATE and self.view.status is Status.OUT_FOR_DELIVERY:
            return "too late: your pizza is out for delivery"
        return OUTCOME_TEXTS[self.outcome]


def decided(view: OrderView) -> Outcome | None:
    """What became of an order's cancel, as far as the read model shows: None, not yet."""
    if view.status is Status.CANCELLED:
        return Outcome.CANCELLED
    if view.status in (Status.INVALID_ORDER, Status.SOLD_OUT):
        return Outcome.NOT_MADE
    if any(entry.status.is_assembled for entry in view.history):
        return Outcome.TOO_LATE
    return None


def is_cancellable(view: OrderView) -> bool:
    """Whether a cancel could still win: nothing decided, nothing assembled."""
    return decided(view) is None
