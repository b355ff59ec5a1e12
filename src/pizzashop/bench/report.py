"""The bench's figures: computed from a run's timeline, printed as a table, saved as JSON and a plot."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pizzashop.bench.meter import Usage
from pizzashop.bench.rush import OrderTrack, Timeline
from pizzashop.contract import Status

MB = 1024 * 1024
PLACED = int(
    Status.RECEIVED
)  # in a track's `reached`, the order's own placed time stands for status 100
STAGES = {  # name -> (from, to); "seen" is when the bench saw the order delivered
    "placed->200": (PLACED, int(Status.IN_OVEN)),
    "200->300": (int(Status.IN_OVEN), int(Status.OUT_FOR_DELIVERY)),
    "300->400": (int(Status.OUT_FOR_DELIVERY), int(Status.DELIVERED)),
    "400->seen": (int(Status.DELIVERED), 0),
}
IN_FLIGHT_POINTS = 400


@dataclass(frozen=True)
class Spread:
    """A latency distribution in ms."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        ordered = sorted(values)
        return cls(
            len(ordered),
            _percentile(ordered, 50),
            _percentile(ordered, 95),
            _percentile(ordered, 99),
            ordered[-1],
            round(sum(ordered) / len(ordered), 1),
        )


# The processes that are a run's front door: the shop's web app, the bench's bare door.
DOOR_PROCESSES = ("web", "bare door")


@dataclass(frozen=True)
class FrontDoorFigures:
    """What the customers saw of `POST /api/orders`."""

    concurrency: int
    customers: int
    requests: int
    orders_per_second: float  # 201s over the first request's start to the last answer
    latency_ms: Spread  # of the 201s: request sent to answer read
    answers: dict[str, int]  # status code -> count
    client_errors: int  # 4xx
    server_errors: int  # 5xx
    client_cpu_seconds: float  # what the customers' HTTP client used while placing
    # When the slowest 1% of the 201s were sent, s after the first request: first, median, last.
    slowest_sent_s: tuple[float, float, float]


@dataclass
class RunReport:
    """One run: the shop, the reference chain or a peer."""

    name: str
    orders_placed: int
    orders_delivered: int
    orders_refused: int
    seconds: float  # first order placed to last order seen delivered
    orders_per_second: float
    end_to_end_ms: Spread  # placed -> seen delivered
    stages_ms: dict[str, Spread]
    lag_at_end: dict[str, int]
    processes: dict[str, dict[str, float]]
    # Its own processes' peaks summed (not the broker's nor the bench's): "rss" and "pss" MB.
    own_memory_mb: dict[str, float] = field(default_factory=dict)
    in_flight: list[tuple[float, int]] = field(default_factory=list)  # (seconds, orders)
    latencies_ms: list[float] = field(default_factory=list)  # for the histogram; not in JSON
    warm_up_undelivered: int = 0  # warm-up orders (not in the figures) never delivered
    front_door: FrontDoorFigures | None = None  # when the orders came through the web app

    @property
    def all_delivered(self) -> bool:
        return (
            self.orders_delivered == self.orders_placed
            and self.orders_refused == 0
            and self.warm_up_undelivered == 0
        )


def run_report(
    name: str,
    timeline: Timeline,
    lag: dict[str, int],
    usage: dict[str, Usage],
    own: Collection[str],
    front_door: FrontDoorFigures | None = None,
) -> RunReport:
    delivered = timeline.delivered
    last_seen = max((t.seen_delivered_at or 0 for t in delivered), default=timeline.started_at)
    seconds = max(0.001, (last_seen - timeline.started_at) / 1000)
    latencies = [float(t.seen_delivered_at - t.placed_at) for t in delivered if t.seen_delivered_at]
    return RunReport(
        name=name,
        orders_placed=timeline.placed,
        orders_delivered=len(delivered),
        orders_refused=len(timeline.refused),
        seconds=round(seconds, 3),
        orders_per_second=round(len(delivered) / seconds, 1),
        end_to_end_ms=Spread.of(latencies),
        stages_ms={stage: Spread.of(_stage(delivered, a, b)) for stage, (a, b) in STAGES.items()},
        lag_at_end=lag,
        processes={
            n: {
                "cpu_seconds": round(u.cpu_seconds, 2),
                "peak_rss_mb": round(u.peak_rss / MB, 1),
                "peak_pss_mb": round(u.peak_pss / MB, 1),
                "first_rss_mb": round(u.rss[0][1] / MB, 1) if u.rss else math.nan,
            }
            for n, u in usage.items()
        },
        own_memory_mb={
            "rss": round(sum(usage[n].peak_rss for n in own) / MB, 1),
            "pss": round(sum(usage[n].peak_pss for n in own) / MB, 1),
        },
        in_flight=_in_flight(list(timeline.tracks.values()), timeline.started_at),
        latencies_ms=latencies,
        warm_up_undelivered=timeline.warm_up_undelivered,
        front_door=front_door,
    )


def _stage(tracks: list[OrderTrack], start: int, end: int) -> list[float]:
    def time_of(track: OrderTrack, status: int) -> int | None:
        if status == PLACED:
            return track.placed_at
        if status == 0:
            return track.seen_delivered_at
        return track.reached.get(status)

    spans = []
    for track in tracks:
        a, b = time_of(track, start), time_of(track, end)
        if a is not None and b is not None:
            spans.append(float(b - a))
    return spans


def _in_flight(tracks: list[OrderTrack], started_at: int) -> list[tuple[float, int]]:
    """Orders placed and not yet seen delivered, over time (at most IN_FLIGHT_POINTS steps)."""
    changes = sorted(
        [(t.placed_at, 1) for t in tracks]
        + [(t.seen_delivered_at, -1) for t in tracks if t.seen_delivered_at is not None]
    )
    if not changes:
        return []
    step = max(1, len(changes) // IN_FLIGHT_POINTS)
    points, level = [], 0
    for i, (at, change) in enumerate(changes):
        level += change
        if i % step == 0 or i == len(changes) - 1:
            points.append((round((at - started_at) / 1000, 3), level))
    return points


def _percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# --- output --------------------------------------------------------------------------------


def as_json(
    settings: dict[str, Any], shop: RunReport, pipelines: list[RunReport]
) -> dict[str, Any]:
    def run(r: RunReport) -> dict[str, Any]:
        data = asdict(r)
        data.pop("latencies_ms")
        data["all_delivered"] = r.all_delivered
        return data

    report: dict[str, Any] = {"settings": settings, "shop": run(shop)}
    for other in pipelines:
        report[other.name] = run(other)
        report[f"shop_vs_{other.name}"] = ratios(shop, other)
    return report


def ratios(shop: RunReport, reference: RunReport) -> dict[str, float]:
    """The shop's figures as a share (throughput) or multiple (latency) of another pipeline's."""

    def ratio(a: float, b: float) -> float:
        return round(a / b, 3) if b else math.nan

    figures = {
        "orders_per_second": ratio(shop.orders_per_second, reference.orders_per_second),
        "p50_latency": ratio(shop.end_to_end_ms.p50, reference.end_to_end_ms.p50),
        "p99_latency": ratio(shop.end_to_end_ms.p99, reference.end_to_end_ms.p99),
    }
    ours, theirs = shop.front_door, reference.front_door
    if ours is not None and theirs is not None:
        figures["front_door_orders_per_second"] = ratio(
            ours.orders_per_second, theirs.orders_per_second
        )
        figures["front_door_p99_latency"] = ratio(ours.latency_ms.p99, theirs.latency_ms.p99)
        figures["front_door_cpu_per_order"] = ratio(door_cpu_ms(shop), door_cpu_ms(reference))
    return figures


def door_cpu_ms(run: RunReport) -> float:
    """The CPU its front door's process used per order placed, in ms (the last one metered of
    its own: the web app, or the bench's bare door)."""
    door = next((name for name in reversed(run.processes) if name in DOOR_PROCESSES), None)
    if door is None or not run.orders_placed:
        return math.nan
    return run.processes[door]["cpu_seconds"] * 1000 / run.orders_placed


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # NaN is not JSON: a figure that could not be measured is null.
    path.write_text(json.dumps(_nan_to_none(report), indent=2) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


def table(shop: RunReport, pipelines: list[RunReport]) -> str:
    runs = [shop, *pipelines]
    figures = [_columns(_figure_rows(runs)), *(_ratio_line(shop, o) for o in pipelines)]
    front_door = [_front_door_lines(r.front_door, r) for r in runs if r.front_door is not None]
    return "\n\n".join(
        [
            "\n".join(figures),
            *front_door,
            _lag_table(runs),
            _process_table(runs),
            "\n".join(_own_memory_line(r) for r in runs),
        ]
    )


def _figure_rows(runs: list[RunReport]) -> list[tuple[str, ...]]:
    """Each run's orders, throughput and latencies side by side, and the stages of each run
    through the shop's kitchen."""
    rows: list[tuple[str, ...]] = [("", *(r.name for r in runs))]
    rows.append(("orders delivered", *(f"{r.orders_delivered}/{r.orders_placed}" for r in runs)))
    rows.append(("orders/s", *(f"{r.orders_per_second:.1f}" for r in runs)))
    rows.append(("seconds", *(f"{r.seconds:.2f}" for r in runs)))
    for label in ("p50", "p95", "p99", "max"):
        rows.append(
            (f"end-to-end {label} ms", *(_ms(getattr(r.end_to_end_ms, label)) for r in runs))
        )
    for stage in STAGES:
        rows.append((f"{stage} p50/p99 ms", *(_stage_cell(r, stage) for r in runs)))
    return rows


def _stage_cell(run: RunReport, stage: str) -> str:
    """A stage's p50 / p99 ms, for a run whose kitchen stamps its statuses (a pipeline's only
    sighting is the bench's own, of its last topic)."""
    if not run.stages_ms["placed->200"].count:
        return "-"
    return f"{_ms(run.stages_ms[stage].p50)} / {_ms(run.stages_ms[stage].p99)}"


def _lag_table(runs: list[RunReport]) -> str:
    groups = sorted({g for r in runs for g in r.lag_at_end})
    return _columns(
        [("consumer group", "lag at end")]
        + [(g, str(next(r.lag_at_end[g] for r in runs if g in r.lag_at_end))) for g in groups]
    )


def _process_table(runs: list[RunReport]) -> str:
    return _columns(
        [("run: process", "CPU s", "peak RSS MB", "peak PSS MB", "first RSS MB")]
        + [
            (
                f"{r.name}: {name}",
                f"{p['cpu_seconds']:.2f}",
                f"{p['peak_rss_mb']:.1f}",
                f"{p['peak_pss_mb']:.1f}",
                f"{p['first_rss_mb']:.1f}",
            )
            for r in runs
            for name, p in r.processes.items()
        ]
    )


def _own_memory_line(run: RunReport) -> str:
    memory = run.own_memory_mb
    return (
        f"{run.name}: its processes' peaks summed, beside the broker and the bench: "
        f"{memory['rss']:.0f} MB RSS, {memory['pss']:.0f} MB PSS (shared pages counted once)"
    )


def _front_door_lines(door: FrontDoorFigures, run: RunReport) -> str:
    spread = door.latency_ms
    first, median, last = door.slowest_sent_s
    return "\n".join(
        [
            f"front door ({run.name}): POST /api/orders, {door.concurrency} clients at once, "
            f"{door.customers} customers",
            f"  {door.orders_per_second:.1f} orders/s answered 201 (end to end: "
            f"{run.orders_per_second:.1f}); latency p50 {_ms(spread.p50)} ms, "
            f"p99 {_ms(spread.p99)} ms, max {_ms(spread.max)} ms; "
            f"{door_cpu_ms(run):.2f} ms of its CPU per order",
            f"  answers: {', '.join(f'{c} x{n}' for c, n in door.answers.items())}; "
            f"4xx {door.client_errors}, 5xx {door.server_errors}; the customers' client used "
            f"{door.client_cpu_seconds:.2f} CPU s",
            f"  the slowest 1% were sent {first:.2f} to {last:.2f} s into the rush (median "
            f"{median:.2f} s)",
        ]
    )


def _ratio_line(shop: RunReport, other: RunReport) -> str:
    r = ratios(shop, other)
    line = (
        f"shop vs {other.name}: {r['orders_per_second']:.0%} of its orders/s, "
        f"p50 latency x{r['p50_latency']:.1f}, p99 latency x{r['p99_latency']:.1f}"
    )
    if "front_door_orders_per_second" in r:
        line += (
            f"\n  the front doors: {r['front_door_orders_per_second']:.0%} of its orders/s "
            f"answered, answer p99 x{r['front_door_p99_latency']:.1f}, "
            f"CPU per order x{r['front_door_cpu_per_order']:.1f}"
        )
    return line


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def _columns(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def write_plot(path: Path, shop: RunReport, pipelines: list[RunReport]) -> None:
    """Latency histogram and orders in flight over time, side by side."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    runs = [shop, *pipelines]
    figure, (histogram, in_flight) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        if run.latencies_ms:
            histogram.hist(run.latencies_ms, bins=50, alpha=0.6, label=run.name)
        if run.in_flight:
            at, level = zip(*run.in_flight, strict=True)
            in_flight.step(at, level, where="post", label=run.name)
    histogram.set(title="End-to-end latency (placed to delivered)", xlabel="ms", ylabel="orders")
    in_flight.set(title="Orders in flight", xlabel="seconds since the first order", ylabel="orders")
    for axes in (histogram, in_flight):
        axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
