"""The operator's restock form on the pipeline page: an ingredient, an amount, and the key the
form was drawn with, read and checked, then handed to the order desk. A refusal says why, with
the status code that fits, and keeps what was sent, so the operator corrects it and sends again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from starlette.datastructures import FormData

from pizzashop.commands import ordering
from pizzashop.commands.desk import NotRestockable, OrderDesk
from pizzashop.contract import Restock
from pizzashop.contract.pantry import MAX_RESTOCK

MAX_AMOUNT_DIGITS = len(str(MAX_RESTOCK))


@dataclass(frozen=True)
class RestockForm:
    """The form as the page draws it: a new key each time the page is drawn afresh; after a
    refusal, what was sent (under the same key) and what was wrong with it."""

    key: str
    ingredient: str = ""
    amount: str = ""
    problem: str | None = None

    @classmethod
    def blank(cls) -> RestockForm:
        return cls(ordering.new_idempotency_key())


class RestockRefused(Exception):
    """The form's restock, not sent (or not known to be), with the answer's status code."""

    def __init__(self, status_code: int, form: RestockForm) -> None:
        super().__init__(form.problem)
        self.status_code = status_code
        self.form = form


def form_sent(form: FormData) -> RestockForm:
    return RestockForm(
        key=str(form.get("restock_key", "")),
        ingredient=str(form.get("ingredient", "")),
        amount=str(form.get("amount", "")).strip(),
    )


async def restock_from(desk: OrderDesk, sent: RestockForm) -> Restock:
    """The form's restock, sent and acknowledged; RestockRefused otherwise."""
    if ordering.idempotency_key_problem(sent.key):
        problem = "This form has no usable restock key: nothing was sent. Please fill it in again."
        raise RestockRefused(422, replace(RestockForm.blank(), problem=problem))
    amount = whole_number(sent.amount)
    if amount is None:
        problem = (
            f"Not restocked: the amount is a whole number from 1 to {MAX_RESTOCK:,}, "
            f"not {sent.amount!r}."
        )
        raise RestockRefused(422, replace(sent, problem=problem))
    try:
        return await desk.restock(sent.ingredient, amount, form_key=sent.key)
    except NotRestockable as e:
        raise RestockRefused(422, replace(sent, problem=f"Not restocked: {e}.")) from None
    except ordering.OrderNotAccepted as e:
        problem = f"The pantry cannot take a restock right now ({e}): nothing was sent."
        raise RestockRefused(503, replace(sent, problem=problem)) from None
    except ordering.OrderUnconfirmed as e:
        problem = (
            f"The broker did not confirm the restock in time ({e}): it may still count. "
            "Sending this form again is safe: it counts once."
        )
        raise RestockRefused(504, replace(sent, problem=problem)) from None


def whole_number(text: str) -> int | None:
    """The amount as a number, if it is written as digits only (no sign, no decimals) and no
    longer than the largest restock; the desk checks its bounds."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_AMOUNT_DIGITS:
        return int(text)
    return None


def restocked_note(restock: Restock) -> str:
    return f"Sent to the pantry: {restock.amount:,} more {restock.ingredient}."
