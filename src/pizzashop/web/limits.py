"""What one session may ask of a web process: a few live streams at once, counted in this
process's memory (see the README); and what one request may send: 64 KiB."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class OpenStreams:
    """Live streams open per session. A stream lives in the process that serves it, so this
    process's count is the whole count for its streams. Used from the event loop only (the
    stream endpoints are async), so it needs no lock."""

    def __init__(self, most_per_session: int) -> None:
        self.most_per_session = most_per_session
        self._open: Counter[str] = Counter()

    def stream(self, owner: str, events: AsyncIterable[str]) -> StreamingResponse:
        """An event stream that holds one of the owner's places until it ends, or a 429."""
        if self._open[owner] >= self.most_per_session:
            raise HTTPException(
                429,
                f"{self.most_per_session} live streams are open for this session already: "
                "close one (another tab or window) and try again",
            )
        self._open[owner] += 1
        return _HeldStream(events, release=lambda: self._release(owner))

    def open_in_total(self) -> int:
        return sum(self._open.values())

    def _release(self, owner: str) -> None:
        self._open[owner] -= 1
        if self._open[owner] <= 0:
            del self._open[owner]


def open_streams_of(request: Request) -> OpenStreams:
    """The live streams of the app serving this request."""
    streams: OpenStreams = request.app.state.open_streams
    return streams


class _HeldStream(StreamingResponse):
    """A server-sent events response that gives its place back however it ends: the events
    run out, the client leaves, the server closes, or sending fails."""

    def __init__(self, events: AsyncIterable[str], release: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream", headers=SSE_HEADERS)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


MAX_BODY_BYTES = 64 * 1024  # an order is well under 1 KiB; nothing the shop takes is bigger


class BodyLimit:
    """413 for a request body over `MAX_BODY_BYTES`, before any of it is parsed: at once when
    its Content-Length says so, else as soon as the bytes that arrive pass the limit."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            await _too_large(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await _too_large(send)


class BodyTooLarge(Exception):
    """A body without a Content-Length ran past the limit while it was read."""


async def _too_large(send: Send) -> None:
    body = b'{"detail": "the request body is over 64 KiB: nothing the shop takes is that big"}'
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
