"""The operator's page, behind the admin token: the pipeline, live, and the pantry's stock with
a form to restock it.

Without a token configured the page does not exist (404). The token comes once, as
`?token=...` (then the signed session keeps a fingerprint of it, so the page's live stream
needs no token in its address) or with every request as `Authorization: Bearer ...`. The
restock form also carries the session's anti-forgery token, as every form of the shop does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from pizzashop.config import Settings
from pizzashop.contract import Topic
from pizzashop.contract.pantry import MAX_RESTOCK
from pizzashop.operator.pipeline import PipelineSnapshot, PipelineWatch
from pizzashop.web.limits import open_streams_of
from pizzashop.web.orders import desk_of
from pizzashop.web.pages import render
from pizzashop.web.restocking import (
    RestockForm,
    RestockRefused,
    form_sent,
    restock_from,
    restocked_note,
)
from pizzashop.web.session import check_csrf, session_id

router = APIRouter(prefix="/admin", include_in_schema=False)

PAGE = "/admin/pipeline"
SESSION_KEY = "operator"
RESTOCKED = "restocked"  # what the page says once, after the redirect that follows a restock
NO_FIGURE = "\u2013"  # an en dash: nothing to show
PUSH_EVERY = 1.0  # seconds between two snapshots on the live stream
# The topics drawn on the arrow into each stage, as in the architecture diagram.
ARROW_INTO: dict[str, tuple[Topic, ...]] = {
    "assemble": (Topic.ORDERED, Topic.RESERVED, Topic.CANCEL),
    "bake": (Topic.ASSEMBLED,),
    "delivery": (Topic.BAKED,),
    "status": (Topic.STATUS,),
}


def pipeline_url(settings: Settings, host: str | None = None) -> str | None:
    """Where the operator opens the pipeline page, token included; None without a token."""
    if not settings.admin_token:
        return None
    where = f"http://{host or settings.web_host}:{settings.web_port}"
    return f"{where}{PAGE}?token={quote(settings.admin_token, safe='')}"


def duration_text(milliseconds: int | None) -> str:
    """A stage time as the page shows it (static/pipeline.js says the same)."""
    if milliseconds is None:
        return NO_FIGURE
    return f"{milliseconds} ms" if milliseconds < 1000 else f"{milliseconds / 1000:.1f} s"


def check_operator(request: Request, token: str | None) -> None:
    """Let the operator through, or answer 404 (no token configured), 401 (none given) or 403."""
    expected: str | None = request.app.state.admin_token
    if not expected:
        raise HTTPException(404, "There is no such page.")
    given = token if token is not None else _bearer_token(request)
    if given is not None:
        if not secrets.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(403, "That is not the operator's token.")
        if token is not None:
            request.session[SESSION_KEY] = _fingerprint(expected)
        return
    kept = str(request.session.get(SESSION_KEY, ""))
    if not secrets.compare_digest(kept.encode(), _fingerprint(expected).encode()):
        raise HTTPException(
            401,
            "This page is for the shop's operator: open it with ?token= and the admin token.",
            headers={"WWW-Authenticate": 'Bearer realm="pizzashop operator"'},
        )


def _bearer_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _fingerprint(token: str) -> str:
    """What the session keeps: the cookie can be read by its holder, so never the token itself,
    and a new token ends every session opened with the old one."""
    return hashlib.sha256(b"pizzashop operator:" + token.encode()).hexdigest()


def _watch(request: Request) -> PipelineWatch:
    watch: PipelineWatch = request.app.state.pipeline
    return watch


@router.get("/pipeline")
async def pipeline_page(request: Request, token: str | None = None) -> Response:
    check_operator(request, token)
    if token is not None:  # kept in the session now: out of the address bar and the history
        return RedirectResponse(PAGE, status_code=303)
    return await operator_page(request)


async def operator_page(
    request: Request, status_code: int = 200, restock: RestockForm | None = None
) -> Response:
    """The page: the pipeline's snapshot, the stock, and the restock form (blank, with a new
    key, unless a refused one is drawn again)."""
    snapshot = await run_in_threadpool(_watch(request).snapshot)
    return render(
        request,
        "pipeline.html",
        status_code,
        snapshot=snapshot,
        arrow_into=ARROW_INTO,
        stock=await request.app.state.stock.levels(),
        restock=restock or RestockForm.blank(),
        restocked=request.session.pop(RESTOCKED, None),
        max_restock=MAX_RESTOCK,
    )


@router.post("/restock")
async def restock_form(request: Request) -> Response:
    """Send the form's restock, then show the page again (a reload sends nothing); a refused
    one draws the page with the form as it was sent and what was wrong with it."""
    check_operator(request, None)
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    try:
        restock = await restock_from(desk_of(request), form_sent(form))
    except RestockRefused as refused:
        return await operator_page(request, refused.status_code, refused.form)
    request.session[RESTOCKED] = restocked_note(restock)
    return RedirectResponse(PAGE, status_code=303)


@router.get("/pipeline.json")
async def pipeline_json(request: Request, token: str | None = None) -> dict[str, object]:
    check_operator(request, token)
    snapshot = await run_in_threadpool(_watch(request).snapshot)
    return snapshot.as_dict()


@router.get("/pipeline/events")
async def pipeline_events(request: Request, token: str | None = None) -> StreamingResponse:
    """A `snapshot` event about once a second, until the client leaves or the server closes
    (then the browser reconnects by itself once the server is back). Counted against the
    session's live streams: a customer's session when there is one, else the operator's."""
    check_operator(request, token)
    closing: Callable[[], bool] = request.app.state.closing
    watch = _watch(request)

    async def snapshots() -> AsyncIterator[str]:
        while not closing() and not await request.is_disconnected():
            yield snapshot_event(await run_in_threadpool(watch.snapshot))
            await asyncio.sleep(PUSH_EVERY)

    owner = session_id(request) or SESSION_KEY
    return open_streams_of(request).stream(owner, snapshots())


def snapshot_event(snapshot: PipelineSnapshot) -> str:
    return f"event: snapshot\ndata: {json.dumps(snapshot.as_dict())}\n\n"
