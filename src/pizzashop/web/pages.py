"""The pages a customer sees: sign in, the menu, the confirmation, my orders, one order."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from pizzashop import menu
from pizzashop.commands import ordering
from pizzashop.commands.cancelling import Outcome, is_cancellable
from pizzashop.commands.desk import KeyUsedForAnotherOrder, SoldOut
from pizzashop.commands.ordering import PlaceOrder
from pizzashop.commands.rate_limit import TooManyOrders
from pizzashop.contract import Status
from pizzashop.web.orders import book_of, desk_of
from pizzashop.web.session import (
    check_csrf,
    csrf_token,
    customer_id,
    customer_name,
    remember_write,
    sign_in,
    sign_out,
    writes_of,
)

router = APIRouter(include_in_schema=False)

TIMELINE = (Status.RECEIVED, Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED)
Text = Annotated[str, Form()]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    context.update(customer=customer_name(request), csrf=csrf_token(request), menu=menu)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    titles = {
        401: "For the shop's operator only",
        403: "That did not work",
        404: "We could not find that",
        429: "One moment, please",
        503: "The kitchen is busy",
    }
    return render(
        request,
        "error.html",
        status_code,
        title=titles.get(status_code, "Something went wrong"),
        message=message,
    )


def to_sign_in() -> RedirectResponse:
    return RedirectResponse("/signin", status_code=303)


@router.get("/signin")
def sign_in_page(request: Request) -> Response:
    return render(request, "signin.html")


@router.post("/signin")
def sign_in_form(request: Request, name: Text = "", csrf: Text = "") -> Response:
    check_csrf(request, csrf)
    name = name.strip()
    if not name or len(name) > menu.MAX_NAME_LENGTH:
        return render(
            request,
            "signin.html",
            422,
            error=f"Your name, please: 1 to {menu.MAX_NAME_LENGTH} characters.",
            name=name,
        )
    sign_in(request, name)
    return RedirectResponse("/", status_code=303)


@router.post("/signout")
def sign_out_form(request: Request, csrf: Text = "") -> Response:
    check_csrf(request, csrf)
    sign_out(request)
    return to_sign_in()


@router.get("/")
def menu_page(request: Request) -> Response:
    if customer_id(request) is None:
        return to_sign_in()
    # The form's one-time key: submitted twice (a double click, a retry), it is one order.
    return render(
        request,
        "menu.html",
        chosen={"name": customer_name(request), "extra_toppings": []},
        idempotency_key=ordering.new_idempotency_key(),
    )


@router.post("/orders")
async def place_order_form(request: Request) -> Response:
    customer = customer_id(request)
    if customer is None:
        return to_sign_in()
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    chosen = choices_of(form)
    key = str(form.get("idempotency_key", ""))
    if ordering.idempotency_key_problem(key):
        key = ordering.new_idempotency_key()  # a form from before keys: one order per submission
    try:
        placement = await desk_of(request).place(PlaceOrder(customer, chosen, key))
    except MENU_AGAIN as e:
        return menu_again(request, chosen, key, e)
    if placement.written is not None:
        remember_write(request, placement.written)
    return RedirectResponse(f"/orders/{placement.placed.order_id}?placed=1", status_code=303)


def choices_of(form: FormData) -> dict[str, Any]:
    """What the customer chose on the menu's form."""
    return {
        "name": str(form.get("name", "")),
        "sauce": str(form.get("sauce", "")),
        "cheese": str(form.get("cheese", "")),
        "main_topping": str(form.get("main_topping", "")),
        "extra_toppings": [str(x) for x in form.getlist("extra_toppings")],
    }


def menu_again(
    request: Request, chosen: dict[str, Any], key: str, error: Exception
) -> HTMLResponse:
    """The menu with the customer's choices and what kept the order from being placed."""
    if isinstance(error, ordering.InvalidOrder):
        return render(
            request, "menu.html", 422, chosen=chosen, errors=error.problems, idempotency_key=key
        )
    if isinstance(error, TooManyOrders):
        # The same key: pressing Order again later is still this one order.
        page = render(
            request,
            "menu.html",
            429,
            chosen=chosen,
            errors={"order": str(error)},
            idempotency_key=key,
        )
        page.headers["Retry-After"] = str(error.retry_after)
        return page
    if isinstance(error, SoldOut):
        message = f"Sorry, we have run out of {error.ingredient}: please choose something else."
        return render(
            request, "menu.html", 409, chosen=chosen, errors={"order": message}, idempotency_key=key
        )
    status, message = NOT_PLACED[type(error)]
    key = ordering.new_idempotency_key() if isinstance(error, KeyUsedForAnotherOrder) else key
    return render(
        request, "menu.html", status, chosen=chosen, errors={"order": message}, idempotency_key=key
    )


# The answer when an order did not go through: what happened, and what the customer can do.
NOT_PLACED: dict[type[Exception], tuple[int, str]] = {
    ordering.OrderNotAccepted: (
        503,
        "The kitchen cannot take orders right now. Nothing was ordered; please try again.",
    ),
    ordering.OrderUnconfirmed: (
        504,
        "The kitchen did not confirm your order in time: it may still arrive. "
        "Pressing Order again is safe: you will get one pizza, not two.",
    ),
    KeyUsedForAnotherOrder: (
        422,
        "This form was used for another order already. Please check your "
        "choice and press Order again.",
    ),
}
# Every answer of the desk that shows the menu again, with the customer's choices.
MENU_AGAIN: tuple[type[Exception], ...] = (
    ordering.InvalidOrder,
    TooManyOrders,
    SoldOut,
    *NOT_PLACED,
)


@router.get("/orders")
async def my_orders(request: Request) -> Response:
    customer = customer_id(request)
    if customer is None:
        return to_sign_in()
    orders = await book_of(request).orders_seen_by(customer, writes_of(request))
    return render(request, "orders.html", orders=orders)


@router.get("/orders/{order_id}")
async def order_page(
    request: Request, order_id: str, placed: int = 0, cancel: Outcome | None = None
) -> Response:
    customer = customer_id(request)
    if customer is None:
        return to_sign_in()
    view = await book_of(request).order_seen_by(customer, order_id, writes_of(request))
    if view is None:
        raise HTTPException(
            404, "There is no such order among yours. Check the link, or see My orders."
        )
    reached = {entry.status: entry.timestamp for entry in view.history}
    last_seq = max((entry.seq for entry in view.history), default=0)
    return render(
        request,
        "order.html",
        view=view,
        timeline=TIMELINE,
        reached=reached,
        just_placed=bool(placed),
        last_seq=last_seq,
        cancellable=is_cancellable(view),
        cancel_outcome=CANCEL_OUTCOMES.get(cancel) if cancel else None,
    )


# What the order page says after its Cancel button, by the cancel's outcome.
CANCEL_OUTCOMES: dict[Outcome, str] = {
    Outcome.CANCELLED: "Your order is cancelled.",
    Outcome.TOO_LATE: "Too late to cancel: your pizza is already out of the oven.",
    Outcome.NOT_MADE: "There was nothing to cancel: the order was not made.",
    Outcome.UNDECIDED: "The kitchen has your cancel and is deciding: this page shows the outcome.",
}


@router.post("/orders/{order_id}/cancel")
async def cancel_order_form(request: Request, order_id: str, csrf: Text = "") -> Response:
    customer = customer_id(request)
    if customer is None:
        return to_sign_in()
    check_csrf(request, csrf)
    view = await book_of(request).order_seen_by(customer, order_id, writes_of(request))
    if view is None:
        raise HTTPException(
            404, "There is no such order among yours. Check the link, or see My orders."
        )
    try:
        answer = await desk_of(request).cancel(view)
    except (ordering.OrderNotAccepted, ordering.OrderUnconfirmed):
        return error_page(
            request, 503, "The kitchen could not take your cancel right now. Please try again."
        )
    return RedirectResponse(f"/orders/{order_id}?cancel={answer.outcome}", status_code=303)
