"""The bench's orders through the front door: signed-in customers placing them with
`POST /api/orders`, as many requests at once as the bench's `--concurrency` says.

The customers are a process of their own (customers.py), so their HTTP client shares no
interpreter with the bench's watch, and the CPU it uses is reported: a load that uses a
whole core is measuring itself. The bench tells it which order to place when (one JSON line
on its standard input each); it answers once with the customers it signed in, and at the
end with every request's outcome. The bench knows each order's id before it is placed: it is the HMAC of the
customer and the idempotency key under the shop's secret, which the bench chose.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from typing import IO, Any

from pizzashop import contract
from pizzashop.bench.report import FrontDoorFigures, Spread
from pizzashop.commands.ordering import order_id_for
from pizzashop.contract import Order

ORDERS_PER_CUSTOMER = 4  # a few each: far below the per-customer rate limit, which never decides


class WebOrderPlacer:
    """Places the bench's orders through the web app at `url`, signed in as many customers."""

    def __init__(
        self, url: str, secret: str, concurrency: int, orders: int, bare: bool = False
    ) -> None:
        self.concurrency = concurrency
        self.bare = bare  # the bench's hand-written front door: its ids are the keys given
        self.refused: list[str] = []
        self.figures: FrontDoorFigures | None = None
        self.sent_at: dict[str, int] = {}
        self._secret = secret
        self._shop_ids: dict[str, str] = {}  # idempotency key -> the order's id in the shop
        customers = max(concurrency, math.ceil(orders / ORDERS_PER_CUSTOMER))
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pizzashop.bench.customers",
                url,
                str(concurrency),
                str(customers),
                *(["--bare"] if bare else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._customers: list[str] = _read_json_line(self._process.stdout)["customers"]
        self._placed = 0

    def place(self, order_id: str, order: Order) -> tuple[str, int]:
        """Ask a customer to place the order now (`order_id` is its idempotency key); the id
        the shop gives it and when it was asked (ms)."""
        customer = self._customers[self._placed % len(self._customers)]
        self._placed += 1
        choices = order.model_dump(exclude={"customer_id"})
        line = json.dumps({"customer": customer, "key": order_id, "order": choices})
        assert self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")
        self._process.stdin.flush()
        shop_id = order_id if self.bare else order_id_for(self._secret, customer, order_id)
        self._shop_ids[order_id] = shop_id
        return shop_id, contract.now_ms()

    def serve_acknowledgements(self) -> None:
        """The customers wait for their answers in their own process."""

    def close(self, timeout: float = 60.0) -> int:
        """Wait for every answer; how many orders got none (none: every one was answered)."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        outcome = _read_json_line(self._process.stdout)
        self._process.wait(timeout)
        self.figures = _figures(outcome, self.concurrency, len(self._customers))
        self.refused = outcome["refused"]
        self.sent_at = {self._shop_ids[key]: ms for key, ms in outcome["sent_ms"].items()}
        answered: int = sum(outcome["answers"].values())
        return self._placed - answered


def _read_json_line(stream: IO[bytes] | None) -> dict[str, Any]:
    assert stream is not None
    line = stream.readline()
    if not line:
        raise RuntimeError("the bench's customers stopped before answering (see above)")
    answer: dict[str, Any] = json.loads(line)
    return answer


def _figures(outcome: dict[str, Any], concurrency: int, customers: int) -> FrontDoorFigures:
    answers = {str(code): n for code, n in sorted(outcome["answers"].items())}
    placed = answers.get("201", 0)
    seconds = max(0.001, outcome["last_answer"] - outcome["first_request"])
    return FrontDoorFigures(
        concurrency=concurrency,
        customers=customers,
        requests=sum(answers.values()),
        orders_per_second=round(placed / seconds, 1),
        latency_ms=Spread.of(outcome["latencies_ms"]),
        answers=answers,
        client_errors=sum(n for code, n in answers.items() if code.startswith("4")),
        server_errors=sum(n for code, n in answers.items() if code.startswith("5")),
        client_cpu_seconds=round(outcome["cpu_seconds"], 2),
        slowest_sent_s=slowest_sent(
            outcome["latencies_ms"], outcome["answered_sent"], outcome["first_request"]
        ),
    )


def slowest_sent(
    latencies_ms: list[float], sent_at: list[float], first_request: float
) -> tuple[float, float, float]:
    """When the slowest 1% of the answered orders were sent, in seconds after the first
    request (the first, the median, the last): at one moment is a pause somewhere, at the
    start is the rush warming up, all along is the load itself."""
    if not latencies_ms:
        return (math.nan, math.nan, math.nan)
    count = max(1, len(latencies_ms) // 100)
    slowest = sorted(range(len(latencies_ms)), key=latencies_ms.__getitem__)[-count:]
    moments = sorted(sent_at[i] - first_request for i in slowest)
    return (round(moments[0], 2), round(statistics.median(moments), 2), round(moments[-1], 2))
