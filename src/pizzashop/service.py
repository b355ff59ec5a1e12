"""What a service is, in the shop's own words: all a service module needs besides the contract.

A kitchen service (assemble, bake, delivery) gives a handler: a plain function of one event
and the service's state that returns `Work`, and does no I/O. A sink service (status) gives
what to do with a batch of events and where it keeps the offsets it resumes from.
`pizzashop.runtime` runs either kind; nothing here knows of Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pizzashop.contract import Event, Status, Topic
from pizzashop.contract.deadletter import DeadLetter

State = dict[str, Any]  # a partition's state: order id -> what the service keeps of it
HANDLED = (
    "handled"  # the service is done with this order: it ignores the order's events from now on
)


@dataclass(frozen=True)
class Work:
    """What a handler asks for: after `seconds` of simulated work, emit `outputs`.

    `state` holds changes to the service's own state (order id -> value, None deletes),
    kept in Kafka with the outputs. `done_message` is logged when the work is done.
    `dead_letter` parks the event in the dead-letter topic with that reason.
    """

    outputs: Sequence[Event] = ()
    seconds: float = 0.0
    state: Mapping[str, Any] = field(default_factory=dict)
    done_message: str | None = None
    dead_letter: str | None = None  # why this event can never be handled
    # Done in place of the order's work in progress, which is withdrawn: its outputs and its
    # changelog writes are never produced (so this work says what the state becomes). When
    # none is in progress any more (it is out), this comes too late: nothing of it is done.
    # Only for events of the service's interrupting topics.
    withdraws: bool = False


NOTHING_TO_DO = Work()

Handler = Callable[[Event, State], Work]


@dataclass(frozen=True)
class Overdue:
    """What becomes of a state entry that waited too long: it goes, and `park` (the event it
    stands for, rebuilt) goes to the dead-letter topic with `reason`, if there is one."""

    park: Event | None = None
    reason: str = ""


# An order id, its entry in the state, the seconds it has waited: Overdue, or None to wait on.
Expiry = Callable[[str, Any, float], Overdue | None]


@dataclass(frozen=True)
class KitchenService:
    """A service that works on each event: the runtime schedules its work and produces it."""

    name: str
    consumes: tuple[Topic, ...]
    handle: Handler
    keeps_state: bool = False  # delivery's orders on their way, in a compacted changelog topic
    # The statuses it produces for an order it has handled: read back from pizza-status when
    # it gets partitions, they tell which orders to ignore if they come again.
    handled_statuses: frozenset[Status] = frozenset()
    # Asked about each state entry that has waited `expire_after` seconds or more, now and then.
    expire: Expiry | None = None
    expire_after: float = 0.0
    # Topics whose events are handled at once, even while their order has work in progress;
    # their handler may withdraw that work (`Work.withdraws`). bake's cancels.
    interrupting: tuple[Topic, ...] = ()


@dataclass(frozen=True)
class Routed:
    """An event bound for the partition number its order lives on (-1: unknown, by its key)."""

    event: Event
    partition: int


# A batch of events, the offsets to resume from, and where each event was read from.
Offsets = Mapping[tuple[str, int], int]
Source = tuple[str, int, int]
Materialise = Callable[[Sequence[Event], Offsets, Sequence[Source]], None]


class StaleBatch(Exception):
    """A batch that starts before the offsets its store keeps for its partitions: another
    instance has applied it (this one was paused past its session, a zombie). Nothing of it
    is written; the sink goes back to the offsets the store keeps."""


@dataclass(frozen=True)
class SinkService:
    """A service that writes batches into a store of its own, with the offsets they came from."""

    name: str
    consumes: tuple[Topic, ...]
    materialise: Materialise
    stored_offsets: Callable[[], Offsets]
    # Called every `tick_seconds`: events to produce, and events read earlier to park now.
    tick: Callable[[], Sequence[Routed | DeadLetter]] = lambda: ()
    tick_seconds: float = 1.0
    # Told which dead letters are safely in the dead-letter topic.
    parked: Callable[[Sequence[DeadLetter]], None] = lambda _: None
    # True once the store was switched to another (a read model rebuilt from the log): the
    # loop then resumes from the offsets the new store keeps.
    switched: Callable[[], bool] = lambda: False
    close: Callable[[], None] = lambda: None


Service: TypeAlias = KitchenService | SinkService
