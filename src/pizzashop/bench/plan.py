"""What a bench is asked to run: how many orders, how fast, through which door, and what
goes before the shop (pipelines, the shop without its pantry)."""

from __future__ import annotations

from dataclasses import dataclass

from pizzashop.bench.pipelines import PEERS, REFERENCE, Pipeline


class BenchError(RuntimeError):
    """The bench cannot run as asked; the message says why."""


@dataclass(frozen=True)
class BenchPlan:
    """How many orders, how fast, and which pipelines to run before the shop."""

    orders: int | None = None
    rate: float | None = None  # orders per second, for `duration` seconds
    duration: float | None = None
    partitions: int | None = None  # of the topics the bench creates; None: the setting
    reference: bool = False
    peers: tuple[str, ...] = ()  # names in pipelines.PEERS
    timeout: float = 300.0  # seconds after the last order is placed
    warm_up: float = 0.0  # seconds at `rate` before the measured orders, left out of the figures
    keep_state: bool = False
    tracing: bool = False  # the services export spans (to a sink of the bench's own)
    registry: bool = False  # records framed, with a local Schema Registry of the bench's own
    # The same shop with stock not counted (no pantry) takes the rush before the shop.
    without_pantry: bool = False
    through_web: bool = False  # orders placed with POST /api/orders, not produced to Kafka
    concurrency: int = 8  # requests at once, through the web

    @property
    def count(self) -> int:
        if self.orders is not None:
            return self.orders
        if self.rate is None or self.duration is None:
            raise BenchError("give --orders N, or --rate R with --duration S")
        return max(1, round(self.rate * self.duration))

    @property
    def pipelines(self) -> list[Pipeline]:
        """What runs the rush before the shop, in this order."""
        return ([REFERENCE] if self.reference else []) + [PEERS[name] for name in self.peers]

    @property
    def warm_up_count(self) -> int:
        if not self.warm_up:
            return 0
        if self.rate is None:
            raise BenchError(
                "--warm-up goes with --rate (a burst has no steady state to warm up to)"
            )
        return round(self.rate * self.warm_up)
