"""The chaos run's report: what was done to the shop, what came out, what went wrong.

Recovery of a fault: from the moment the shop had its part back (the instance restarted or
resumed, the node up again; for poison and a burst, the moment it was written) until every
order accepted before that moment was final on `pizza-status` (delivered, cancelled or sold out). It
includes the time an order takes anyway, shown beside it as the median order time.
"""

from __future__ import annotations

import bisect
import json
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pizzashop.chaos.faults import Happened, Kind
from pizzashop.chaos.stock import StockVerdict

SHOWN_VIOLATIONS = 50


@dataclass(frozen=True)
class Recovery:
    kind: str
    fault: str
    ended_at: float  # seconds since the run began
    seconds: float


@dataclass
class ChaosReport:
    seed: int
    duration: float  # seconds of faults and load asked for
    rate: float
    cancel_share: float
    faults: list[str]  # each as "time  kind target"
    faults_by_kind: dict[str, int]
    accepted: int
    cancels_sent: int
    retries: int
    orders_in_log: int
    delivered: int
    cancelled: int
    lost: int
    duplicated: int
    stuck_marks: int
    poison_written: int
    poison_parked: int
    median_order_seconds: float
    longest_recovery: Recovery | None
    longest_recovery_by_kind: dict[str, float]
    drained_in: float  # seconds from the last fault's end until the shop was quiet
    wedged_restarts: int = 0  # instances restarted after a hung transactional call
    sold_out: int = 0
    stock: StockVerdict = field(default_factory=StockVerdict)
    violations: list[str] = field(default_factory=list)
    state_dir: str = ""

    @property
    def passed(self) -> bool:
        return not self.violations

    def text(self) -> str:
        kinds = ", ".join(f"{kind} {self.faults_by_kind.get(kind, 0)}" for kind in Kind)
        longest = self.longest_recovery
        recovery = (
            "none measured"
            if longest is None
            else f"{longest.seconds:.1f}s after '{longest.fault}' (ended at {longest.ended_at:.1f}s)"
        )
        lines = [
            f"chaos run, seed {self.seed}: {self.duration:g}s at {self.rate:g} orders/s, "
            f"{self.cancel_share:.0%} of them cancelled at a random moment",
            f"faults ({len(self.faults)}): {kinds}",
            f"orders: {self.accepted} accepted ({self.retries} sends tried again), "
            f"{self.orders_in_log} in the log, {self.delivered} delivered, "
            f"{self.cancelled} cancelled ({self.cancels_sent} cancels sent)",
            self._pantry_line(),
            f"lost: {self.lost}, duplicated: {self.duplicated}, stuck marks on the way: "
            f"{self.stuck_marks}",
            f"poison: {self.poison_written} written, {self.poison_parked} in pizza-dlq",
            f"median order time: {self.median_order_seconds:.1f}s; longest recovery: {recovery}",
            "longest recovery by kind: "
            + ", ".join(f"{k} {s:.1f}s" for k, s in self.longest_recovery_by_kind.items()),
            f"drained in {self.drained_in:.1f}s after the faults stopped",
            f"wedged producers (librdkafka's hang) that exited and were restarted: "
            f"{self.wedged_restarts}",
            f"violations: {len(self.violations)}",
            *(f"  - {v}" for v in self.violations[:SHOWN_VIOLATIONS]),
            *(
                [f"  ... and {len(self.violations) - SHOWN_VIOLATIONS} more"]
                if len(self.violations) > SHOWN_VIOLATIONS
                else []
            ),
            f"seed {self.seed}: replay with `pizzashop chaos --seed {self.seed} "
            f"--duration {self.duration:g} --rate {self.rate:g} --cancel-share {self.cancel_share:g}`",
        ]
        return "\n".join(lines)

    def _pantry_line(self) -> str:
        stock = self.stock
        return (
            f"pantry: {stock.reserved} reserved ({stock.used} used, {stock.released} released), "
            f"{self.sold_out} sold out; {stock.restocks} restocks ({stock.restocks_sent_twice} "
            f"sent twice); start + restocked = used + reserved + left checked for "
            f"{stock.ingredients} ingredients"
        )

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")


def faults_by_kind(happened: Sequence[Happened]) -> dict[str, int]:
    return dict(Counter(str(h.fault.kind) for h in happened))


def recoveries(
    happened: Sequence[Happened],
    accepted_at: Mapping[str, float],
    final_at: Mapping[str, float],
    started: float,
) -> list[Recovery]:
    """Each finished fault's recovery (times in accepted_at and final_at: time.monotonic())."""
    finished = sorted(
        (accepted - started, final_at[order_id] - started)
        for order_id, accepted in accepted_at.items()
        if order_id in final_at
    )
    accepted_times = [accepted for accepted, _ in finished]
    latest_final: list[float] = []  # the latest final time among the orders accepted so far
    for _, final in finished:
        latest_final.append(max(final, latest_final[-1] if latest_final else final))
    result = []
    for h in happened:
        if h.ended is None:
            continue
        before = bisect.bisect_right(accepted_times, h.ended)
        cleared = latest_final[before - 1] if before else h.ended
        seconds = max(0.0, cleared - h.ended)
        result.append(Recovery(str(h.fault.kind), str(h.fault), h.ended, seconds))
    return result


def median_order_seconds(accepted_at: Mapping[str, float], final_at: Mapping[str, float]) -> float:
    times = [final_at[o] - t for o, t in accepted_at.items() if o in final_at]
    return statistics.median(times) if times else 0.0


def longest(recovered: Sequence[Recovery]) -> Recovery | None:
    return max(recovered, key=lambda r: r.seconds, default=None)


def longest_by_kind(recovered: Sequence[Recovery]) -> dict[str, float]:
    longest: dict[str, float] = {}
    for r in recovered:
        longest[r.kind] = max(r.seconds, longest.get(r.kind, 0.0))
    return {str(kind): longest[kind] for kind in Kind if kind in longest}
