"""Who the customer is: a signed session cookie made at sign-in, and its anti-forgery token.

The cookie carries a session id; the sign-in itself is kept in the read model's database
(sign_ins.py), so a sign-out, or the sign-in's age, ends it for every copy of the cookie on every web process.
It also carries where the customer's orders were written, so that any web process can wait
for the read model to have them (see orders.py).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pizzashop import menu
from pizzashop.commands.ordering import Written
from pizzashop.contract import now_ms
from pizzashop.readmodel import reading
from pizzashop.web.sign_ins import SignIns

SESSION_ID = "session_id"
CUSTOMER_ID = "customer_id"
WRITES = "writes"  # pizza-ordered partition -> the offset of the customer's newest order there
DAY_SECONDS = 24 * 3600


class WebSessions:
    """Sign-ins, kept in the read model's database: every web process reads the same ones."""

    def __init__(self, sign_ins: SignIns, lifetime_days: float) -> None:
        self._sign_ins = sign_ins
        self.lifetime_seconds = round(lifetime_days * DAY_SECONDS)

    def start(self, customer_id: str) -> str:
        """A new session id for the customer; sign-ins past their lifetime are dropped here."""
        now = now_ms()
        self._sign_ins.forget_started_before(self._oldest_open(now))
        session_id = secrets.token_urlsafe(24)
        self._sign_ins.start(session_id, customer_id, started_at=now)
        return session_id

    def is_open(self, session_id: str) -> bool:
        return self._sign_ins.is_open(session_id, self._oldest_open(now_ms()))

    def end(self, session_id: str) -> None:
        self._sign_ins.end(session_id, ended_at=now_ms())

    def _oldest_open(self, now: int) -> int:
        return now - self.lifetime_seconds * 1000


def sessions_of(request: Request) -> WebSessions:
    sessions: WebSessions = request.app.state.sessions
    return sessions


class OnlyOpenSessions:
    """Empties the session of a cookie whose sign-in is over (signed out, too old, or made
    before sign-ins were kept): the request goes on as not signed in, and its answer deletes
    the cookie. One indexed lookup per request that carries a sign-in, and no cache, so a
    sign-out counts on every process at once."""

    def __init__(self, app: ASGIApp, sessions: WebSessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope.get("session")
        if scope["type"] == "http" and session and not await self._still_open(session):
            session.clear()
        await self.app(scope, receive, send)

    async def _still_open(self, session: MutableMapping[str, Any]) -> bool:
        session_id = session.get(SESSION_ID)
        if session_id is None:
            # The operator's session signs no customer in; a customer's without an id is old.
            return CUSTOMER_ID not in session
        # Not Starlette's run_in_threadpool: anyio's hand-over to its threads took a fifth of
        # the CPU of placing an order (py-spy); the read model's own thread (reading.py).
        return await reading.read(self.sessions.is_open, str(session_id))


def sign_in(request: Request, name: str) -> str:
    """Start a session for a customer; the id is made here, never taken from a form.
    A session open in this cookie before is ended."""
    sign_out(request)
    customer = secrets.token_urlsafe(16)
    request.session[SESSION_ID] = sessions_of(request).start(customer)
    request.session[CUSTOMER_ID] = customer
    request.session["name"] = name.strip()[: menu.MAX_NAME_LENGTH]
    request.session["csrf"] = secrets.token_urlsafe(16)
    return customer


def sign_out(request: Request) -> None:
    """End the session for every copy of its cookie, and empty this one."""
    session_id = request.session.get(SESSION_ID)
    if session_id is not None:
        sessions_of(request).end(str(session_id))
    request.session.clear()


def session_id(request: Request) -> str | None:
    value = request.session.get(SESSION_ID)
    return str(value) if value else None


def customer_id(request: Request) -> str | None:
    value = request.session.get(CUSTOMER_ID)
    return str(value) if value else None


def remember_write(request: Request, written: Written) -> None:
    """Note in the cookie where an order of this customer was written."""
    writes = dict(request.session.get(WRITES, {}))
    partition = str(written.partition)
    writes[partition] = max(written.offset, int(writes.get(partition, -1)))
    request.session[WRITES] = writes


def writes_of(request: Request) -> dict[int, int]:
    """Where this customer's orders were written: partition -> the newest offset there."""
    return {int(p): int(o) for p, o in request.session.get(WRITES, {}).items()}


def customer_name(request: Request) -> str:
    return str(request.session.get("name", ""))


def required_customer(request: Request) -> str:
    """The signed-in customer of an API call, or 401."""
    found = customer_id(request)
    if found is None:
        raise HTTPException(401, "sign in first: POST /api/session with your name")
    return found


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(16)
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    """A form must carry the token of this session: another site cannot read it to forge one."""
    expected = request.session.get("csrf")
    if not expected or not submitted or not hmac.compare_digest(str(expected), submitted):
        raise HTTPException(
            403, "this form has expired or did not come from this shop; please try again"
        )
