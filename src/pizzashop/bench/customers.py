"""The bench's customers at the front door: a process that signs many customers in and places
the orders the bench sends it with `POST /api/orders`, so many requests at once (see
front_door.py for what it says and why it is a process of its own).

    python -m pizzashop.bench.customers URL CONCURRENCY CUSTOMERS [--bare]

With `--bare` the front door is the bench's hand-written one (bare_door.py): nobody signs in,
and each order names its customer in its body.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

REQUEST_TIMEOUT = aiohttp.ClientTimeout(
    total=30.0
)  # longer than the web app's own (6 s), so its 504 comes through
REFUSALS_KEPT = 20  # the first few answers other than 201, with what they said


async def _customers(url: str, concurrency: int, customers: int, bare: bool) -> None:
    # aiohttp, not httpx: httpx's pool looked at every connection for every request, about
    # 5 ms of CPU a request with 50 connections, and made the load its own bottleneck.
    # A jar that keeps nothing: each request carries its own customer's cookie by hand (a
    # shared jar would sign the next customer in over the last one's session, ending it).
    async with aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=REQUEST_TIMEOUT,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as client:
        if bare:
            cookies = {f"bare-customer-{n}": "" for n in range(customers)}
        else:
            cookies = await _sign_in(client, customers, concurrency)
        _say({"customers": list(cookies)})
        waiting: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        outcome = _Outcome()
        workers = [
            asyncio.create_task(_place_orders(client, cookies, waiting, outcome))
            for _ in range(concurrency)
        ]
        await _read_orders(waiting, concurrency)
        await asyncio.gather(*workers)
        _say(outcome.as_dict())


async def _sign_in(client: aiohttp.ClientSession, customers: int, at_once: int) -> dict[str, str]:
    """Sign each customer in (before the rush): customer id -> its session cookie."""
    cookies: dict[str, str] = {}
    gate = asyncio.Semaphore(at_once)

    async def sign_in(n: int) -> None:
        async with gate, client.post("/api/session", json={"name": f"Customer {n}"}) as answer:
            answer.raise_for_status()
            cookie = answer.headers["set-cookie"].split(";", 1)[0]
            cookies[(await answer.json())["customer_id"]] = cookie

    await asyncio.gather(*(sign_in(n) for n in range(customers)))
    return cookies


class _Outcome:
    def __init__(self) -> None:
        self.answers: Counter[int] = Counter()
        self.latencies_ms: list[float] = []
        self.answered_sent: list[float] = []  # when each of latencies_ms was sent (epoch s)
        self.refused: list[str] = []
        self.sent_ms: dict[str, int] = {}  # idempotency key -> when its request was sent
        self.first_request = math.inf
        self.last_answer = 0.0
        self._cpu_at_start = time.process_time()  # the client's own cost, signing in left out

    def note(self, key: str, started: float, code: int, detail: str) -> None:
        ended = time.time()
        self.sent_ms[key] = round(started * 1000)
        self.first_request = min(self.first_request, started)
        self.last_answer = max(self.last_answer, ended)
        self.answers[code] += 1
        if code == 201:
            self.latencies_ms.append(round((ended - started) * 1000, 2))
            self.answered_sent.append(started)
        elif len(self.refused) < REFUSALS_KEPT:
            self.refused.append(f"{code}: {detail}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "answers": dict(self.answers),
            "latencies_ms": self.latencies_ms,
            "answered_sent": self.answered_sent,
            "sent_ms": self.sent_ms,
            "refused": self.refused,
            "first_request": self.first_request if self.answers else 0.0,
            "last_answer": self.last_answer,
            "cpu_seconds": time.process_time() - self._cpu_at_start,
        }


async def _place_orders(
    client: aiohttp.ClientSession,
    cookies: dict[str, str],
    waiting: asyncio.Queue[dict[str, Any] | None],
    outcome: _Outcome,
) -> None:
    while (order := await waiting.get()) is not None:
        headers = {"Idempotency-Key": order["key"]}
        body = order["order"]
        if cookie := cookies[order["customer"]]:
            headers["Cookie"] = cookie
        else:  # the bare front door: the customer is named in the order
            body = {**body, "customer_id": order["customer"]}
        started = time.time()
        try:
            async with client.post("/api/orders", json=body, headers=headers) as answer:
                outcome.note(order["key"], started, answer.status, (await answer.text())[:200])
        except (aiohttp.ClientError, TimeoutError) as e:
            outcome.note(order["key"], started, 0, f"no answer: {e!r}")


async def _read_orders(waiting: asyncio.Queue[dict[str, Any] | None], workers: int) -> None:
    """Orders from standard input as the bench sends them; at its end, one stop per worker."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        waiting.put_nowait(json.loads(line))
    for _ in range(workers):
        waiting.put_nowait(None)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    address, at_once, how_many = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    asyncio.run(_customers(address, at_once, how_many, bare="--bare" in sys.argv[4:]))
