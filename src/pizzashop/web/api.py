"""The JSON API: sign in, place an order, read my orders, follow one as server-sent events,
cancel one.

JSON POSTs are safe from cross-site request forgery because they must be sent as
`application/json`: a form on another site cannot send that, and a script on another site
cannot either without a CORS permission this app never grants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pizzashop import menu
from pizzashop.commands import ordering
from pizzashop.commands.cancelling import CancelAnswer, Outcome
from pizzashop.commands.desk import KeyUsedForAnotherOrder, OrderDesk, Placement, SoldOut
from pizzashop.commands.ordering import PlaceOrder
from pizzashop.commands.rate_limit import TooManyOrders
from pizzashop.contract import Status
from pizzashop.operator.story import StoryRecord, StoryUnreadable
from pizzashop.readmodel import OrderView
from pizzashop.web.limits import open_streams_of
from pizzashop.web.orders import StoryReader, book_of, desk_of, story_reader_of
from pizzashop.web.session import (
    remember_write,
    required_customer,
    session_id,
    sign_in,
    sign_out,
    writes_of,
)

# A stream position is a history row's number: a 64-bit integer in every database.
MAX_POSITION = 2**63 - 1

router = APIRouter(prefix="/api", tags=["api"])


class SignIn(BaseModel):
    name: str = Field(description="The customer's name")


class OrderRequest(BaseModel):
    name: str = Field(description=f"Name on the order, 1 to {menu.MAX_NAME_LENGTH} characters")
    sauce: str = Field(description="One of: " + ", ".join(menu.SAUCES))
    cheese: str = Field(description="One of: " + ", ".join(menu.CHEESES))
    main_topping: str = Field(description="One of: " + ", ".join(menu.MAIN_TOPPINGS))
    extra_toppings: list[str] = Field(
        default_factory=list, description="Any of: " + ", ".join(menu.EXTRA_TOPPINGS)
    )


def require_json(request: Request) -> None:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send JSON with Content-Type: application/json")


def command_from(request_body: OrderRequest, key: str, customer: str) -> PlaceOrder:
    """The command to place the body's order under the key, or the 422 that says what is wrong."""
    try:
        return PlaceOrder(customer, request_body.model_dump(), key)
    except ordering.UnusableIdempotencyKey as e:
        raise HTTPException(422, [{"field": "Idempotency-Key", "message": str(e)}]) from None
    except ordering.InvalidOrder as e:
        raise HTTPException(
            422, [{"field": f, "message": m} for f, m in e.problems.items()]
        ) from None


UNCONFIRMED = (
    "the kitchen did not confirm the order in time ({}): it may or may not have been "
    "placed. Retrying with the same Idempotency-Key is safe: it never makes a second pizza."
)


async def place(desk: OrderDesk, command: PlaceOrder) -> Placement:
    """The key's order, placed or known; 503 only when it is surely not in the log."""
    headers = {"Idempotency-Key": command.idempotency_key}
    try:
        return await desk.place(command)
    except ordering.OrderNotAccepted as e:
        raise HTTPException(
            503,
            f"the kitchen cannot take orders right now ({e}); nothing was "
            "ordered: please try again",
            headers=headers,
        ) from None
    except ordering.OrderUnconfirmed as e:
        raise HTTPException(
            504, UNCONFIRMED.format(e), headers={**headers, "Retry-After": "1"}
        ) from None
    except KeyUsedForAnotherOrder as e:
        raise HTTPException(
            422, [{"field": "Idempotency-Key", "message": str(e)}], headers=headers
        ) from None
    except TooManyOrders as e:
        raise HTTPException(
            429, str(e), headers={**headers, "Retry-After": str(e.retry_after)}
        ) from None
    except SoldOut as e:
        raise HTTPException(409, str(e), headers=headers) from None


@router.post("/session", status_code=201, summary="Sign in with a name")
def api_sign_in(body: SignIn, request: Request) -> dict[str, str]:
    require_json(request)
    name = body.name.strip()
    if not name or len(name) > menu.MAX_NAME_LENGTH:
        raise HTTPException(
            422, [{"field": "name", "message": f"1 to {menu.MAX_NAME_LENGTH} characters"}]
        )
    return {"customer_id": sign_in(request, name), "name": name}


@router.delete("/session", status_code=204, summary="Sign out, for every copy of the cookie")
def api_sign_out(request: Request) -> Response:
    sign_out(request)
    return Response(status_code=204)


# Read by hand, not as a FastAPI `Header` parameter: resolving that, and a `Response`
# parameter for the answer's headers, was more than a quarter of FastAPI's work on the
# request's parameters (py-spy, under a rush).
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Any unique string per order (a UUID, say): the same key is the same order, "
    "so a retry never makes a second pizza. Made up and returned when not sent.",
}
PLACED = {
    "description": "Placed: the broker has the order",
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
}


@router.post(
    "/orders",
    status_code=201,
    summary="Place an order",
    response_class=JSONResponse,
    responses={201: PLACED},
    openapi_extra={"parameters": [IDEMPOTENCY_KEY]},
)
async def api_place_order(body: OrderRequest, request: Request) -> JSONResponse:
    require_json(request)
    sent_key = request.headers.get("idempotency-key")
    key = sent_key if sent_key is not None else ordering.new_idempotency_key()
    placement = await place(desk_of(request), command_from(body, key, required_customer(request)))
    order_id = placement.placed.order_id
    if placement.written is not None:
        remember_write(request, placement.written)
    headers = {"Idempotency-Key": key}
    if placement.replayed:
        headers["Idempotent-Replayed"] = "true"
    answer = {
        "order_id": order_id,
        "status": int(Status.RECEIVED),
        "links": {"self": f"/api/orders/{order_id}"},
    }
    return JSONResponse(answer, status_code=201, headers=headers)


@router.get("/stock", summary="How much of each ingredient is left")
async def api_stock(request: Request) -> dict[str, dict[str, int]]:
    """As the pantry last told the read model (at most half a second old here): 0 is sold
    out, and an order for it is refused with 409."""
    return {"stock": await request.app.state.stock.levels()}


@router.get("/orders", summary="My orders, newest first")
async def api_my_orders(request: Request) -> list[dict[str, Any]]:
    orders = await book_of(request).orders_seen_by(required_customer(request), writes_of(request))
    return [v.as_dict(for_its_customer=True) for v in orders]


@router.get("/orders/{order_id}", summary="One of my orders with its status history")
async def api_order(order_id: str, request: Request) -> dict[str, Any]:
    customer = required_customer(request)
    view = await book_of(request).order_seen_by(customer, order_id, writes_of(request))
    if view is None:
        raise HTTPException(404, f"no order {order_id} among yours")
    return view.as_dict(for_its_customer=True)


# What a cancel answers, by its outcome: decided either way, or not yet.
CANCEL_STATUS_CODES: dict[Outcome, int] = {
    Outcome.CANCELLED: 200,
    Outcome.TOO_LATE: 409,
    Outcome.NOT_MADE: 409,
    Outcome.UNDECIDED: 202,
}


@router.post(
    "/orders/{order_id}/cancel",
    summary="Cancel one of my orders, if it is not out of the oven yet",
    responses={
        202: {"description": "Asked; the kitchen has not decided yet: follow the order"},
        409: {"description": "Too late (out for delivery, or delivered), or never made"},
    },
)
async def api_cancel_order(order_id: str, request: Request) -> JSONResponse:
    """The kitchen (bake) decides: an order is cancelled if and only if its cancel reaches
    bake before the pizza is out of the oven. 200 once cancelled (again: it changes nothing);
    409 when too late; 202 when not decided within a few seconds. Nothing to send in the body."""
    view = await book_of(request).order_seen_by(
        required_customer(request), order_id, writes_of(request)
    )
    if view is None:
        raise HTTPException(404, f"no order {order_id} among yours")
    answer = await cancel(desk_of(request), view)  # waits for bake's decision
    return JSONResponse(
        {
            "outcome": str(answer.outcome),
            "detail": answer.text,
            "order": answer.view.as_dict(for_its_customer=True),
        },
        status_code=CANCEL_STATUS_CODES[answer.outcome],
    )


async def cancel(desk: OrderDesk, view: OrderView) -> CancelAnswer:
    """The order's cancel, asked and decided (or not yet); 503 or 504 as when placing it."""
    try:
        return await desk.cancel(view)
    except ordering.OrderNotAccepted as e:
        raise HTTPException(
            503, f"the kitchen cannot take a cancel right now ({e}); please try again"
        ) from None
    except ordering.OrderUnconfirmed as e:
        raise HTTPException(
            504,
            f"the kitchen did not confirm the cancel in time ({e}); trying again is safe",
            headers={"Retry-After": "1"},
        ) from None


@router.get(
    "/orders/{order_id}/events", summary="Server-sent events: each status change of an order"
)
async def api_order_events(
    order_id: str,
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    last_event_id: Annotated[
        int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_POSITION)
    ] = None,
) -> StreamingResponse:
    """Each `status` event's id is its place in the read model's history: a client that
    reconnects with Last-Event-ID (browsers do) gets every change after it. `after` does the
    same for the first connection. Once the order is final an `end` event closes the stream.
    A session holds a few streams open at once (`streams_per_session`); past that, 429."""
    customer = required_customer(request)
    view = await book_of(request).order_seen_by(customer, order_id, writes_of(request))
    if view is None:
        raise HTTPException(404, f"no order {order_id} among yours")
    closing: Callable[[], bool] = request.app.state.closing

    async def over() -> bool:
        return closing() or await request.is_disconnected()

    stream = book_of(request).status_changes(order_id, last_event_id or after, over)
    return open_streams_of(request).stream(str(session_id(request)), stream)


@router.get(
    "/orders/{order_id}/records",
    summary="Under the hood: every record of one of my orders in the shop's Kafka topics",
)
async def api_order_records(order_id: str, request: Request) -> dict[str, Any]:
    """Where each record is (topic, partition, offset), when it was written and how long after
    the one before, which service wrote it and its trace id. Read from Kafka on each call."""
    customer = required_customer(request)
    view = await book_of(request).order_seen_by(customer, order_id, writes_of(request))
    if view is None:
        raise HTTPException(404, f"no order {order_id} among yours")
    records = await run_in_threadpool(_records_of, story_reader_of(request), view)
    # Without the values: they hold what the customer's API leaves out (their own id, say).
    return {"order_id": order_id, "records": [r.as_dict(with_value=False) for r in records]}


def _records_of(read_story: StoryReader, view: OrderView) -> list[StoryRecord]:
    try:
        return read_story(view)
    except StoryUnreadable as e:
        raise HTTPException(503, f"the order's records cannot be read right now: {e}") from None
