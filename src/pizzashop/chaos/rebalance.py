"""What a rebalance costs the orders, under each consumer group protocol.

Two instances of each service serve a steady stream of orders on a broker of the run's own.
Then a third assemble instance joins, and later one is SIGKILLed. A rebalance shows as orders
that take longer than usual: the pause of an event is the longest an order accepted around it
took to become final, less the median order time before any event. Measured the same way for
both protocols: `classic` (the whole group stops while it rebalances) and `consumer` (KIP-848:
the broker moves partitions one member at a time, the others go on).
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from pizzashop.chaos.evidence import FinalStatuses
from pizzashop.chaos.load import Customers
from pizzashop.chaos.own_cluster import own_cluster, own_cluster_settings
from pizzashop.config import GroupProtocol, Settings
from pizzashop.local.shop import Child, start_part, stop_parts
from pizzashop.services import SERVICE_NAMES

RATE = 20.0  # orders a second
WARM_UP = 10.0  # seconds of orders before the first event
AFTER_EACH_EVENT = 20.0  # seconds to the next: longer than a dead member's session (10 s)
AROUND = 1.0  # orders accepted this long before an event count for it too
SERVICE = "assemble"
SHOP_UP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Pauses:
    protocol: str
    median_order_seconds: float
    joined: float  # the longest an order waited more than usual when an instance joined
    killed: float  # ... when one was SIGKILLed (includes the 10 s its session outlives it)
    joined_mean: float  # the extra wait of the orders around the join, on average
    killed_mean: float  # ... around the kill: a whole group stopping shows here

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def extra_waits(
    event_at: float,
    accepted_at: Mapping[str, float],
    final_at: Mapping[str, float],
    usual: float,
    window: float = AFTER_EACH_EVENT,
) -> list[float]:
    """How much longer than usual each order accepted around `event_at` took (0 at least)."""
    return [
        max(0.0, final_at[order] - accepted - usual)
        for order, accepted in accepted_at.items()
        if event_at - AROUND <= accepted < event_at + window and order in final_at
    ]


def measure_rebalances(settings: Settings, runs: int, say: Callable[[str], None]) -> list[Pauses]:
    """`runs` runs of each protocol, alternating, so both meet the same machine."""
    protocols: tuple[GroupProtocol, ...] = ("classic", "consumer")
    return [measure_rebalance(settings, p, say) for _ in range(runs) for p in protocols]


def measure_rebalance(
    settings: Settings, protocol: GroupProtocol, say: Callable[[str], None]
) -> Pauses:
    """One run on a broker of its own, removed afterwards."""
    state_dir = Path(tempfile.mkdtemp(prefix="pizzashop-rebalance-"))
    settings = own_cluster_settings(settings, state_dir, nodes=1, time_scale=0.01).replace(
        group_protocol=protocol
    )
    try:
        with own_cluster(settings, nodes=1) as (settings, _kafka):
            return _RebalanceRun(settings, say).run()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


class _RebalanceRun:
    def __init__(self, settings: Settings, say: Callable[[str], None]) -> None:
        self.settings, self.say = settings, say
        self.logs = settings.state_dir / "logs"
        self.children: list[Child] = []
        self.customers = Customers(settings, random.Random(1), RATE, 0.0, 0.0)
        self.final_statuses = FinalStatuses(settings)
        self.usual_from = 0.0  # when the shop was up: the usual order time is taken from then

    def run(self) -> Pauses:
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in (*SERVICE_NAMES, *SERVICE_NAMES):
            self._start(name)
        self.final_statuses.start()
        try:
            self.customers.start()
            self._wait_until_final(timeout=SHOP_UP_TIMEOUT)  # the shop is up
            self.usual_from = time.monotonic()
            time.sleep(WARM_UP)  # orders at a steady rate, not a wait for a condition
            joined_at = time.monotonic()
            self._start(SERVICE)
            time.sleep(AFTER_EACH_EVENT)
            killed_at = time.monotonic()
            next(c for c in self.children if c.name == SERVICE).process.kill()
            time.sleep(AFTER_EACH_EVENT)
            self.customers.stop()
            self._wait_until_final()
        finally:
            self.customers.stop()
            stop_parts(self.children)
            self.final_statuses.stop()
        return self._pauses(joined_at, killed_at)

    def _start(self, name: str) -> None:
        number = sum(child.name == name for child in self.children)
        with (self.logs / f"{name}-{number}.log").open("ab") as output:
            self.children.append(start_part(name, self.settings, output))

    def _wait_until_final(self, timeout: float = 60.0) -> None:
        """Until every order accepted so far is final (and at least one was)."""
        deadline = time.monotonic() + timeout
        accepted, final = self.customers.placed.accepted_at, self.final_statuses.final_at
        while time.monotonic() < deadline and not (accepted and set(accepted) <= set(final)):
            time.sleep(0.2)  # the shop works meanwhile; look again

    def _pauses(self, joined_at: float, killed_at: float) -> Pauses:
        accepted, final = self.customers.placed.accepted_at, self.final_statuses.final_at
        before = [
            final[o] - t
            for o, t in accepted.items()
            if self.usual_from <= t < joined_at - AROUND and o in final
        ]
        usual = statistics.median(before) if before else 0.0
        joined = extra_waits(joined_at, accepted, final, usual)
        killed = extra_waits(killed_at, accepted, final, usual)
        pauses = Pauses(
            protocol=self.settings.group_protocol,
            median_order_seconds=round(usual, 3),
            joined=round(max(joined, default=0.0), 3),
            killed=round(max(killed, default=0.0), 3),
            joined_mean=round(statistics.fmean(joined or [0.0]), 3),
            killed_mean=round(statistics.fmean(killed or [0.0]), 3),
        )
        self.say(
            f"{pauses.protocol:>8}: usual order {pauses.median_order_seconds:.2f}s; "
            f"an instance joining: +{pauses.joined:.2f}s at most, +{pauses.joined_mean:.2f}s "
            f"on average; one killed: +{pauses.killed:.2f}s at most, "
            f"+{pauses.killed_mean:.2f}s on average"
        )
        return pauses
