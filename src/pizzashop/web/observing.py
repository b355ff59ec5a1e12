"""The web app seen from outside: /healthz, /readyz and /metrics, each request counted and,
while tracing is on, each one a span (the root of the order it places)."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pizzashop.observe import tracing
from pizzashop.observe.metrics import HTTP_DURATION, HTTP_REQUESTS
from pizzashop.web.orders import book_of, desk_of

router = APIRouter(include_in_schema=False)
READY_TIMEOUT = 2.0  # seconds the broker has to answer a readiness probe


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the broker and the read model both answer; 503 naming what does not."""
    book, taker = book_of(request), desk_of(request).taker
    missing = []
    try:
        await run_in_threadpool(taker.broker_answers, READY_TIMEOUT)
    except KafkaException as e:
        missing.append(f"the broker at {taker.address} does not answer: {e}")
    try:
        await run_in_threadpool(book.read_model.recent_orders, 1)
    except Exception as e:  # any database's error: what matters is that it does not answer
        missing.append(f"the read model does not answer: {e}")
    body = {"ready": not missing, "missing": missing}
    return JSONResponse(body, status_code=503 if missing else 200)


@router.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def observe_requests(app: FastAPI, enabled: bool) -> None:
    """Count every request by route and code (with `enabled`), and trace it while tracing."""
    app.add_middleware(ObservedRequests, enabled=enabled)


class ObservedRequests:
    """A plain ASGI middleware: Starlette's `BaseHTTPMiddleware` (what `@app.middleware` makes)
    runs each request in a task group of its own, which cost more CPU than the order itself."""

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if tracing.enabled():
            with tracing.tracer().start_as_current_span(
                f"{scope['method']} {scope['path']}", kind=SpanKind.SERVER
            ):
                await self.app(scope, receive, noting_status)
        else:
            await self.app(scope, receive, noting_status)
        if self.enabled:
            route, method = _route_of(scope), scope["method"]
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    """The route's template (`/api/orders/{order_id}`), so ids do not become labels."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
