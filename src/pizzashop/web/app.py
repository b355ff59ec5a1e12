"""The web app: the command side (it places orders on `pizza-ordered`) and a window on the
query side (it reads the read model), as server-side pages and as a JSON API.

Pages work without JavaScript; the order page follows its order live with server-sent
events. Customers sign in with a name and get a signed session cookie; the customer id
comes from that session, never from a form.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from pizzashop.commands.desk import OrderDesk
from pizzashop.commands.ordering import OrderTaker
from pizzashop.commands.rate_limit import OrderRateLimit
from pizzashop.config import Settings, shop_secret
from pizzashop.operator import story
from pizzashop.operator.display import clock
from pizzashop.operator.pipeline import BrokerReader, PipelineWatch
from pizzashop.readmodel.store import ReadModel
from pizzashop.runtime.collector import spare_the_collector
from pizzashop.web import admin, api, observing, pages
from pizzashop.web.apidocs import serve_api_docs
from pizzashop.web.changes import OrderChanges
from pizzashop.web.limits import BodyLimit, OpenStreams
from pizzashop.web.orders import OrderBook, StoryReader
from pizzashop.web.security import SECURITY_HEADERS, SecurityHeaders
from pizzashop.web.session import OnlyOpenSessions, WebSessions
from pizzashop.web.sign_ins import SignIns
from pizzashop.web.stock import StockBoard

log = logging.getLogger("pizzashop.web")

HERE = Path(__file__).parent


def create_app(
    settings: Settings,
    read_model: ReadModel,
    order_taker: OrderTaker,
    read_story: StoryReader | None = None,
) -> FastAPI:
    """The app; `read_story` reads an order's records from Kafka (the tests give a stand-in)."""
    app = FastAPI(
        title="pizzashop",
        description="Order a pizza and follow it from the oven to your door.",
        version="1.0",
        docs_url=None,  # served by apidocs, with Swagger UI's files from the app itself
        redoc_url=None,
        # The app traces and counts its requests itself (observing.py); FastAPI's own look for
        # a tracer on every request cost a twentieth of the CPU of placing an order.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    secret = shop_secret(settings)
    _keep_in_state(app, settings, secret, read_model, order_taker, read_story)
    _check_sign_ins(app, settings, secret, SignIns(read_model.database))
    _serve_pages_and_api(app, settings)
    return app


def _keep_in_state(
    app: FastAPI,
    settings: Settings,
    secret: str,
    read_model: ReadModel,
    order_taker: OrderTaker,
    read_story: StoryReader | None,
) -> None:
    """What the routes find in `app.state`: the order book and desk, the pipeline, the templates."""
    changes = OrderChanges(read_model.orders, closing=lambda: bool(app.state.closing()))
    app.state.book = book = OrderBook(read_model.orders, changes)
    rate_limit = OrderRateLimit(settings.orders_per_minute)
    app.state.stock = stock = StockBoard(read_model.orders, settings)
    app.state.desk = OrderDesk(order_taker, secret, book, rate_limit, stock=stock)
    app.state.open_streams = OpenStreams(settings.streams_per_session)
    app.state.read_story = read_story or functools.partial(story.read_story, settings)
    app.state.pipeline = PipelineWatch(read_model.pipeline, BrokerReader(settings))
    app.state.admin_token = settings.admin_token
    # Live streams end when this says the server is closing; `web_server` wires it up.
    app.state.closing = lambda: False
    app.state.templates = templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["clock"] = clock
    templates.env.filters["duration"] = admin.duration_text


def _check_sign_ins(app: FastAPI, settings: Settings, secret: str, sign_ins: SignIns) -> None:
    """The signed session cookie, and on every request whether its sign-in is still open."""
    app.state.sessions = sessions = WebSessions(sign_ins, settings.session_days)
    # The last added runs first: the cookie is read, then its sign-in checked.
    app.add_middleware(OnlyOpenSessions, sessions=sessions)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="pizzashop_session",
        max_age=sessions.lifetime_seconds,
        same_site="lax",
    )


def _serve_pages_and_api(app: FastAPI, settings: Settings) -> None:
    """The pages, the API, the static files and the error answers; then the two outermost
    middlewares, so every answer passes them. The API first: routes are matched in turn."""
    app.include_router(api.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    serve_api_docs(app)
    app.include_router(pages.router)
    app.include_router(observing.router)
    observing.observe_requests(app, settings.metrics)
    app.include_router(admin.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]  # Starlette types a handler as taking any Exception
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]  # Starlette types a handler as taking any Exception
    app.add_exception_handler(Exception, _server_error)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)  # last, so outermost: every answer gets the headers


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = [_problem(e) for e in error.errors()]
    status = 400 if any(p["field"] == "body" for p in problems) else 422
    return JSONResponse({"detail": problems}, status_code=status)


def _problem(error: dict[str, Any]) -> dict[str, str]:
    location = [str(part) for part in error.get("loc", ()) if part != "body"]
    if error.get("type") == "json_invalid":
        return {"field": "body", "message": "the body is not valid JSON"}
    return {"field": ".".join(location) or "body", "message": str(error.get("msg", "invalid"))}


async def _http_error(request: Request, error: StarletteHTTPException) -> Any:
    if _wants_json(request):
        return JSONResponse(
            {"detail": error.detail},
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )
    page = pages.error_page(request, error.status_code, str(error.detail))
    page.headers.update(getattr(error, "headers", None) or {})  # WWW-Authenticate, say
    return page


async def _server_error(request: Request, error: Exception) -> Response:
    """A 500. Starlette sends it from outside every middleware, so it adds the headers itself;
    plain text, since the page's layout needs the session, which may be what failed."""
    message = "something went wrong in the shop; please try again"
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=500, headers=SECURITY_HEADERS)
    return PlainTextResponse(message.capitalize(), status_code=500, headers=SECURITY_HEADERS)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.endswith(".json")


def web_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for the app whose live streams end as soon as it starts to stop.

    Otherwise one open order page would hold the server up until its pizza arrives: uvicorn
    waits for every open response. The browser reconnects later and misses nothing.
    """
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    )
    app.state.closing = lambda: server.should_exit
    return server


def serve_web(settings: Settings) -> None:
    """Run the web app in the foreground (what `pizzashop web` and `pizzashop up` run)."""
    from pizzashop.observe import tracing
    from pizzashop.readmodel.generations import FOLLOW_SECONDS
    from pizzashop.readmodel.store import open_readmodel

    tracing.start_tracing("web")
    # Follows a switch to a rebuilt read model by itself, within a second.
    read_model = open_readmodel(settings.readmodel_url, follow_every=FOLLOW_SECONDS)
    app = create_app(settings, read_model, OrderTaker(settings))
    log.info("The shop is open at http://%s:%d", settings.web_host, settings.web_port)
    spare_the_collector()
    try:
        web_server(app, settings.web_host, settings.web_port).run()
    finally:
        tracing.stop_tracing()
