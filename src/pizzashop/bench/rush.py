"""A rush of orders: place them on schedule and follow each one until it is delivered."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from pizzashop import contract
from pizzashop.bench.load import Placer
from pizzashop.bench.watch import Watch
from pizzashop.contract import Order, Status

LOOK_INTERVAL = 0.005  # how often the bench looks for news: the resolution of its latencies
PLACE_CHUNK = 200  # orders placed between two looks, so a big burst does not delay the looks


@dataclass
class OrderTrack:
    placed_at: int  # ms
    reached: dict[int, int] = field(default_factory=dict)  # status -> its timestamp (ms)
    seen_delivered_at: int | None = None  # ms, when the bench saw the delivery
    measured: bool = True  # False for a warm-up order: delivered, but not in the figures


@dataclass
class Timeline:
    tracks: dict[str, OrderTrack]  # the measured orders
    started_at: int  # ms, the first measured order placed
    placed: int
    refused: list[str]
    warm_up_undelivered: int = 0

    @property
    def delivered(self) -> list[OrderTrack]:
        return [t for t in self.tracks.values() if t.seen_delivered_at is not None]


def run_rush(
    orders: Sequence[tuple[str, Order]],
    schedule: Sequence[float],
    placer: Placer,
    watch: Watch,
    timeout: float,
    label: str,
    warm_up: int = 0,
) -> Timeline:
    """Place every order at its time; return when all are delivered or `timeout` after the last.

    The first `warm_up` orders only warm the shop up (connections, caches, the broker's JIT):
    they must be delivered too, but the figures are the later orders'.
    """
    tracks: dict[str, OrderTrack] = {}
    start = time.monotonic()
    deadline = start + (schedule[-1] if schedule else 0) + timeout
    placed = delivered = 0
    with tqdm(total=len(orders), desc=label, unit="order", disable=None) as bar:
        while delivered < len(orders) and time.monotonic() < deadline:
            due = time.monotonic() - start
            chunk_end = min(len(orders), placed + PLACE_CHUNK)
            while placed < chunk_end and schedule[placed] <= due:
                shop_order_id, placed_at = placer.place(*orders[placed])
                tracks[shop_order_id] = OrderTrack(placed_at, measured=placed >= warm_up)
                placed += 1
            placer.serve_acknowledgements()
            news = _follow(watch, tracks)
            delivered += news
            bar.update(news)
            bar.set_postfix(placed=placed, refresh=False)
            next_order = start + schedule[placed] if placed < len(orders) else float("inf")
            time.sleep(max(0.0, min(next_order - time.monotonic(), LOOK_INTERVAL)))
    return _timeline(placer, tracks)


def _timeline(placer: Placer, tracks: dict[str, OrderTrack]) -> Timeline:
    """The measured orders' tracks once the placer is closed, each placed when it was sent."""
    unacknowledged = placer.close()
    for order_id, sent_at in placer.sent_at.items():
        if order_id in tracks:
            tracks[order_id].placed_at = sent_at
    refused = placer.refused + ([f"{unacknowledged} never acknowledged"] if unacknowledged else [])
    measured = {i: t for i, t in tracks.items() if t.measured}
    first = min((t.placed_at for t in measured.values()), default=contract.now_ms())
    undelivered = sum(1 for t in tracks.values() if not t.measured and t.seen_delivered_at is None)
    return Timeline(measured, first, len(measured), refused, undelivered)


def _follow(watch: Watch, tracks: dict[str, OrderTrack]) -> int:
    """Take the watch's news; how many orders it newly shows delivered."""
    now = contract.now_ms()
    delivered = 0
    for order_id, status, timestamp in watch.new_sightings():
        track = tracks.get(order_id)
        if track is None:
            continue  # not this run's order (a shared cluster's other traffic)
        track.reached.setdefault(status, timestamp)
        if status == Status.DELIVERED and track.seen_delivered_at is None:
            track.seen_delivered_at = now
            delivered += 1
    return delivered
