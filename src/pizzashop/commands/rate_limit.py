"""How many orders one customer may place a minute: a rule of placing orders, counted in the
memory of the process that places them (see the README)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

ORDER_WINDOW = 60.0  # seconds: the "minute" of orders_per_minute


class TooManyOrders(Exception):
    """The customer has placed as many orders as a minute allows; nothing was produced."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"{limit} orders a minute is the most the shop takes from one customer: nothing "
            f"was ordered. Please try again in {retry_after} s."
        )
        self.retry_after = retry_after


class OrderRateLimit:
    """A sliding window per customer: at most `per_minute` orders in any 60 seconds (0: no limit).

    Only orders about to be produced count; a replayed idempotency key produces nothing."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._placed: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # orders are placed from the server's worker threads
        self._last_sweep = clock()

    def take(self, customer_id: str) -> None:
        """Count one order of the customer, or raise TooManyOrders."""
        if not self.per_minute:
            return
        now = self._clock()
        with self._lock:
            self._forget_quiet_customers(now)
            placed = self._placed.setdefault(customer_id, deque())
            while placed and placed[0] <= now - ORDER_WINDOW:
                placed.popleft()
            if len(placed) >= self.per_minute:
                wait = placed[0] + ORDER_WINDOW - now
                raise TooManyOrders(self.per_minute, max(1, math.ceil(wait)))
            placed.append(now)

    def _forget_quiet_customers(self, now: float) -> None:
        """Once a window, drop customers with no order in the last one, so memory stays small."""
        if now - self._last_sweep < ORDER_WINDOW:
            return
        self._last_sweep = now
        for customer in [
            c for c, t in self._placed.items() if not t or t[-1] <= now - ORDER_WINDOW
        ]:
            del self._placed[customer]
