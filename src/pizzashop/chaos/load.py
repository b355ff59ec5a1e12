"""The chaos run's customers: orders at a steady rate, a cancel for a share of them at a random
moment, and a burst now and then; placed by the command side's own code, each with its
idempotency key, and tried again with the same key while the broker does not say yes. And the
pantry's supplier: a restock now and then, some of them sent twice with the same id.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pizzashop import contract, menu
from pizzashop.commands.ordering import OrderNotAccepted, OrderTaker, OrderUnconfirmed, order_id_for
from pizzashop.config import Settings, shop_secret
from pizzashop.contract import CancelRequested, Order, Restock

log = logging.getLogger("pizzashop.chaos")

# How long a customer keeps trying with the same key: longer than any fault keeps the
# cluster from answering (a node restarts in seconds; partitions move in a few).
GIVE_UP_AFTER = 60.0
RETRY_PAUSE = 0.5


@dataclass
class Placed:
    """What the customers did, as the broker acknowledged it (times: time.monotonic())."""

    accepted_at: dict[str, float] = field(default_factory=dict)
    cancels_sent: dict[str, float] = field(default_factory=dict)
    retries: int = 0  # placements and cancels tried again with the same key
    given_up: list[str] = field(default_factory=list)  # never acknowledged: maybe in the log
    restocks_sent: dict[str, tuple[str, int]] = field(default_factory=dict)  # id: what, how many


@dataclass(frozen=True)
class Restocking:
    """Every `every` seconds, `amount` more of one of `ingredients`; a share sent twice."""

    ingredients: tuple[str, ...]
    every: float
    amount: int
    sent_twice: float = 0.3


class Customers:
    """Runs in a thread of its own between `start` and `stop`."""

    def __init__(
        self,
        settings: Settings,
        rng: random.Random,
        rate: float,
        cancel_share: float,
        cancel_within: float,
        restocking: Restocking | None = None,
    ) -> None:
        self._settings = settings
        self._secret = shop_secret(settings)
        self._rng = rng
        self._rate = rate
        self._cancel_share = cancel_share
        self._cancel_within = cancel_within
        self._restocking = restocking
        self._bursts: deque[int] = deque()
        self._cancels: list[tuple[float, str]] = []  # a heap of (when, order id)
        self._ordering = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-customers", daemon=True)
        self._taker: OrderTaker | None = None
        self.placed = Placed()

    def start(self) -> None:
        self._taker = OrderTaker(self._settings)
        self._ordering.set()
        self._thread.start()

    def burst(self, orders: int) -> None:
        self._bursts.append(orders)

    def stop_ordering(self) -> None:
        """No new orders from now on; the cancels already decided are still sent."""
        self._ordering.clear()

    def stop(self, timeout: float = GIVE_UP_AFTER + 10) -> None:
        self._stopping.set()
        self._thread.join(timeout)
        if self._taker is not None:
            self._taker.close()

    def _run(self) -> None:
        next_order = next_restock = time.monotonic()
        while not self._stopping.is_set() or self._cancels:
            now = time.monotonic()
            if self._cancels and self._cancels[0][0] <= now:
                self._cancel(heapq.heappop(self._cancels)[1])
            elif self._ordering.is_set() and self._restocking and now >= next_restock:
                next_restock = now + self._restocking.every
                self._restock(self._restocking)
            elif self._ordering.is_set() and self._bursts:
                for _ in range(self._bursts.popleft()):
                    self._order()
            elif self._ordering.is_set() and now >= next_order:
                self._order()
                next_order = max(next_order + 1 / self._rate, time.monotonic() - 1.0)
            else:
                time.sleep(0.005)  # a customer's pace, not a wait for a condition

    def _order(self) -> None:
        rng = self._rng
        order = Order(
            customer_id=f"chaos-customer-{rng.randrange(100)}",
            name="Chaos",
            sauce=rng.choice(menu.SAUCES),
            cheese=rng.choice(menu.CHEESES),
            main_topping=rng.choice(menu.MAIN_TOPPINGS),
            extra_toppings=rng.sample(menu.EXTRA_TOPPINGS, rng.randrange(3)),
        )
        key = f"chaos-{rng.getrandbits(64):016x}"
        order_id = order_id_for(self._secret, order.customer_id, key)
        cancel_after = rng.uniform(0, self._cancel_within)
        wants_to_cancel = rng.random() < self._cancel_share
        if self._tell_the_broker(lambda: self._taker_().place(order, order_id), order_id):
            self.placed.accepted_at[order_id] = time.monotonic()
            if wants_to_cancel:
                heapq.heappush(self._cancels, (time.monotonic() + cancel_after, order_id))

    def _cancel(self, order_id: str) -> None:
        event = CancelRequested(order_id, contract.now_ms())
        if self._tell_the_broker(lambda: self._taker_().send(event), order_id):
            self.placed.cancels_sent[order_id] = time.monotonic()

    def _restock(self, restocking: Restocking) -> None:
        rng = self._rng
        restock = Restock(
            f"chaos-restock-{rng.getrandbits(64):016x}",
            rng.choice(restocking.ingredients),
            restocking.amount,
        )
        for _ in range(2 if rng.random() < restocking.sent_twice else 1):
            if self._tell_the_broker(lambda: self._taker_().send(restock, 0), restock.restock_id):
                self.placed.restocks_sent[restock.restock_id] = (restock.ingredient, restock.amount)

    def _tell_the_broker(self, send: Callable[[], object], order_id: str) -> bool:
        """Send until acknowledged, the same event each time (the key makes it the same order)."""
        deadline = time.monotonic() + GIVE_UP_AFTER
        while True:
            try:
                send()
                return True
            except (OrderNotAccepted, OrderUnconfirmed) as e:
                if time.monotonic() > deadline:
                    log.warning("Giving up on %s: %s", order_id, e)
                    self.placed.given_up.append(order_id)
                    return False
                self.placed.retries += 1
                time.sleep(RETRY_PAUSE)  # as a customer would before pressing again

    def _taker_(self) -> OrderTaker:
        assert self._taker is not None, "started"
        return self._taker
