"""The invariants a chaos run must keep, checked on what the topics and the read model hold.

Plain data in, a verdict out: no broker here, so each rule is tested on hand-made records.

An order's steps on `pizza-status`, in the partition's order (stuck marks set aside), follow
one of three paths: 200 300 400 (delivered), 450 (cancelled: assemble decided the race
before the pizza was assembled) or 520 (sold out: the pantry was short). A status twice, a
step backwards, a step after 450, a path that stops short: each is a violation. Stuck marks
(510) may come at any moment while an order waits through a fault; they are counted, and
only an order still stuck at the end is wrong.

The pantry's records are checked apart (stock.py): every ingredient counted exactly once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pizzashop import contract
from pizzashop.chaos.stock import StockVerdict, check_stock
from pizzashop.contract import (
    CancelRequested,
    ContractError,
    Event,
    OrderPlaced,
    PizzaAssembled,
    PizzaBaked,
    Status,
    StatusChanged,
    Topic,
)
from pizzashop.contract.deadletter import DeadLetter
from pizzashop.contract.pantry import PantryEvent
from pizzashop.readmodel import OrderView

# (topic, partition, offset): where a record was written.
Position = tuple[str, int, int]

DELIVERED_PATH = (Status.IN_OVEN, Status.OUT_FOR_DELIVERY, Status.DELIVERED)
CANCELLED_PATH = (Status.CANCELLED,)
SOLD_OUT_PATH = (Status.SOLD_OUT,)
# The steps that may follow each step (None: the first step on pizza-status).
NEXT_STEPS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Status.IN_OVEN, Status.CANCELLED, Status.SOLD_OUT}),
    Status.IN_OVEN: frozenset({Status.OUT_FOR_DELIVERY}),
    Status.OUT_FOR_DELIVERY: frozenset({Status.DELIVERED}),
    Status.DELIVERED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.SOLD_OUT: frozenset(),
}
STEP_RANK = {
    Status.CANCELLED: 1,
    Status.SOLD_OUT: 1,
    Status.IN_OVEN: 1,
    Status.OUT_FOR_DELIVERY: 2,
    Status.DELIVERED: 3,
}


@dataclass(frozen=True)
class Seen:
    """One record as read back from a topic (read committed)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def position(self) -> Position:
        return (self.topic, self.partition, self.offset)


@dataclass
class Evidence:
    """What a run left behind, and what it knows it did."""

    accepted: set[str]  # orders the broker acknowledged
    cancels_sent: set[str]  # orders whose cancel the broker acknowledged
    poison: list[Position]  # where each poison record was written
    records: Sequence[Seen]  # the pipeline topics, each partition in offset order
    dead_letters: Sequence[DeadLetter]
    views: Mapping[str, OrderView | None]  # the read model's view of each order in the log
    start: Callable[[str], int] = lambda ingredient: 0  # the pantry's starting stock
    restocks_sent: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # id: what, how many


@dataclass
class Verdict:
    orders_in_log: int = 0
    delivered: int = 0
    cancelled: int = 0
    sold_out: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck_marks: int = 0
    poison_parked: int = 0
    stock: StockVerdict = field(default_factory=StockVerdict)
    violations: list[str] = field(default_factory=list)


@dataclass
class _Trail:
    """Everything the topics say about one order."""

    placed: int = 0
    steps: list[Status] = field(default_factory=list)
    stuck_marks: int = 0
    assembled: int = 0
    baked: int = 0
    cancel_asked: int = 0


def check(evidence: Evidence) -> Verdict:
    verdict = Verdict()
    events = _events(evidence.records, set(evidence.poison), verdict.violations)
    trails = _trails(e for e in events if not isinstance(e, PantryEvent))
    placed = {order_id for order_id, trail in trails.items() if trail.placed}
    verdict.orders_in_log = len(placed)
    for order_id in sorted(evidence.accepted - placed):
        verdict.lost.append(order_id)
        verdict.violations.append(f"{order_id}: accepted but not in {Topic.ORDERED}")
    for order_id, trail in sorted(trails.items()):
        problems = _order_problems(order_id, trail, order_id in placed)
        problems += _view_problems(order_id, trail, evidence.views.get(order_id))
        verdict.violations += problems
        verdict.stuck_marks += trail.stuck_marks
        if _is_duplicated(trail):
            verdict.duplicated.append(order_id)
        if tuple(trail.steps) == DELIVERED_PATH:
            verdict.delivered += 1
        elif tuple(trail.steps) == CANCELLED_PATH:
            verdict.cancelled += 1
        elif tuple(trail.steps) == SOLD_OUT_PATH:
            verdict.sold_out += 1
        elif order_id in placed and not any(s.is_final for s in trail.steps):
            verdict.lost.append(order_id)
    assembled = {order_id for order_id, trail in trails.items() if trail.assembled}
    pantry_events = [e for e in events if isinstance(e, PantryEvent)]
    verdict.stock = check_stock(pantry_events, evidence.start, evidence.restocks_sent, assembled)
    verdict.violations += verdict.stock.problems
    poison = set(evidence.poison)
    verdict.poison_parked, parking_problems = _parking_problems(poison, evidence.dead_letters)
    verdict.violations += parking_problems
    return verdict


def _events(records: Iterable[Seen], poison: set[Position], problems: list[str]) -> list[Event]:
    """Every record decoded, poison left out; a record neither an event nor poison is a problem."""
    events = []
    for record in records:
        if record.position in poison:
            continue
        try:
            events.append(contract.decode(record.topic, record.key, record.value))
        except ContractError as e:
            problems.append(f"{_where(record.position)}: not a valid event, not poison: {e}")
    return events


def _trails(events: Iterable[Event]) -> dict[str, _Trail]:
    trails: dict[str, _Trail] = defaultdict(_Trail)
    for event in events:
        trail = trails[event.order_id]
        match event:
            case OrderPlaced():
                trail.placed += 1
            case PizzaAssembled():
                trail.assembled += 1
            case PizzaBaked():
                trail.baked += 1
            case CancelRequested():
                trail.cancel_asked += 1
            case StatusChanged(status=Status.STUCK):
                trail.stuck_marks += 1
            case StatusChanged(status=status):
                trail.steps.append(status)
    return trails


def _order_problems(order_id: str, trail: _Trail, placed: bool) -> list[str]:
    problems = [f"{order_id}: {problem}" for problem in step_problems(trail.steps)]
    if not placed and (trail.steps or trail.assembled or trail.baked):
        problems.append(f"{order_id}: steps of an order never placed")
    if trail.assembled > 1:
        problems.append(f"{order_id}: {trail.assembled} records on {Topic.ASSEMBLED}")
    if trail.baked > 1:
        problems.append(f"{order_id}: {trail.baked} records on {Topic.BAKED}")
    never_made = Status.CANCELLED in trail.steps or Status.SOLD_OUT in trail.steps
    if never_made and trail.assembled:
        problems.append(f"{order_id}: {_path(trail.steps)}, yet its pizza was assembled")
    if Status.CANCELLED in trail.steps and not trail.cancel_asked:
        problems.append(f"{order_id}: cancelled without a cancel asked")
    if tuple(trail.steps) == DELIVERED_PATH and (trail.assembled, trail.baked) != (1, 1):
        problems.append(f"{order_id}: delivered without one assembled and one baked record")
    return problems


def step_problems(steps: Sequence[Status]) -> list[str]:
    """What is wrong with an order's steps on `pizza-status` (stuck marks left out)."""
    if Status.DELIVERED in steps and Status.CANCELLED in steps:
        return ["both delivered and cancelled"]
    twice = sorted(s for s, n in Counter(steps).items() if n > 1)
    if twice:
        return [f"status {', '.join(str(int(s)) for s in twice)} more than once: {_path(steps)}"]
    problems = []
    previous: Status | None = None
    for step in steps:
        if step not in NEXT_STEPS.get(previous, frozenset()):
            if previous is Status.CANCELLED:
                problems.append(f"{int(step)} after cancelled: {_path(steps)}")
            elif previous is not None and STEP_RANK.get(step, 0) < STEP_RANK.get(previous, 0):
                problems.append(f"backwards from {int(previous)} to {int(step)}: {_path(steps)}")
            else:
                problems.append(f"{int(step)} after {int(previous or 100)}: {_path(steps)}")
        previous = step
    if not problems and not any(s.is_final for s in steps):
        problems.append(f"never final: {_path(steps)}")
    return problems


def _view_problems(order_id: str, trail: _Trail, view: OrderView | None) -> list[str]:
    """The read model must tell each order's story as the topics do."""
    if not trail.placed:
        return []
    if view is None:
        return [f"{order_id}: missing from the read model"]
    problems = []
    shown = [e.status for e in view.history if e.status is not Status.STUCK]
    if shown != [Status.RECEIVED, *trail.steps]:
        problems.append(
            f"{order_id}: the read model shows {_path(shown)}, the topics {_path(trail.steps)}"
        )
    if view.status is Status.STUCK:
        problems.append(f"{order_id}: still stuck in the read model")
    elif trail.steps and view.status is not trail.steps[-1]:
        problems.append(f"{order_id}: the read model says {int(view.status)}")
    return problems


def _is_duplicated(trail: _Trail) -> bool:
    return len(trail.steps) != len(set(trail.steps)) or trail.assembled > 1 or trail.baked > 1


def _parking_problems(
    poison: set[Position], letters: Sequence[DeadLetter]
) -> tuple[int, list[str]]:
    """Every poison record parked with its reason, and nothing else parked."""
    parked = {
        (letter.source_topic, letter.source_partition, letter.source_offset)
        for letter in letters
        if letter.error
    }
    problems = [f"{_where(p)}: poison not in {Topic.DEAD_LETTER}" for p in sorted(poison - parked)]
    for letter in letters:
        source = (letter.source_topic, letter.source_partition, letter.source_offset)
        if source not in poison:
            problems.append(
                f"{_where(source)}: a real event parked by {letter.service}: {letter.error}"
            )
        elif not letter.error:
            problems.append(f"{_where(source)}: parked without a reason")
    return len(poison & parked), problems


def _where(position: Position) -> str:
    topic, partition, offset = position
    return f"{topic}[{partition}]@{offset}"


def _path(steps: Iterable[Status]) -> str:
    return " ".join(str(int(s)) for s in steps) or "(no step)"
