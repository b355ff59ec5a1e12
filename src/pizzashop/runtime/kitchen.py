"""The kitchen: many orders in the works at once, without Kafka and without handlers.

The runtime hands it every event it consumes as a `Ticket`. The kitchen keeps the events of
one key (one order) in order, lets everything else proceed in parallel, says which tickets
may start now and which work is done cooking, and knows up to which offset each partition
is finished, so the runtime never commits past an event whose outputs are not out yet.
Events of an interrupting topic (bake's cancels) skip the line: they are handled at once,
and may withdraw their order's work in progress (see `withdraw`).
It never calls back: the runtime asks, and runs the handlers itself, in its loop.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from pizzashop.contract import Event
from pizzashop.service import Work

TopicPartition = tuple[str, int]


# Not frozen: a frozen dataclass's __init__ costs three times as much, and one is made for
# every event consumed. Nothing changes a ticket after it is made.
@dataclass(slots=True)
class Ticket:
    """One consumed record, where it came from and what it decoded to."""

    topic: str
    partition: int
    offset: int
    key: str
    event: Event | None  # None: it could not be decoded (see `error`)
    raw_key: bytes | None = None
    raw_value: bytes | None = None
    error: str | None = None
    headers: list[tuple[str, bytes | None]] | None = None  # read only while tracing is on

    @property
    def source(self) -> TopicPartition:
        return (self.topic, self.partition)


class PartitionProgress:
    """Offsets taken from one partition and which are finished: the commit watermark."""

    def __init__(self) -> None:
        self._open: deque[int] = deque()
        self._finished: set[int] = set()
        self._next: int | None = None  # the offset after the last finished prefix

    def take(self, offset: int) -> None:
        self._open.append(offset)

    def finish(self, offset: int) -> None:
        self._finished.add(offset)
        while self._open and self._open[0] in self._finished:
            done = self._open.popleft()
            self._finished.discard(done)
            self._next = done + 1

    def committable(self) -> int | None:
        """The offset to commit: everything before it is finished."""
        return self._next

    @property
    def in_progress(self) -> int:
        return len(self._open)


class Kitchen:
    """Schedules work: per key in order, across keys in parallel, up to `capacity` at once.

    Events past the capacity wait their turn in arrival order (one order's events behind
    each other); the runtime pauses its partitions while the kitchen is full, so the
    waiting line never grows past one batch.

    A ticket given out by `ready_to_start` counts as cooking: the runtime runs its handler
    and says how long the work takes with `start`.
    """

    def __init__(
        self, capacity: int = 0, interrupting_topics: frozenset[str] = frozenset()
    ) -> None:
        self.capacity = capacity  # 0 = unlimited
        self.interrupting_topics = interrupting_topics
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        self._cooking: dict[str, Ticket] = {}  # per key: the one event being worked on
        self._waiting: dict[str, deque[Ticket]] = {}  # per key: the events behind it
        self._next_up: deque[Ticket] = deque()  # first events of keys waiting for a free cook
        self._ready: list[Ticket] = []  # given a cook, not yet started by the runtime
        self._timers: list[tuple[float, int, Ticket, Work]] = []
        self._interrupting: dict[int, Ticket] = {}  # by id: taken at once, not finished yet
        self._withdrawn: dict[int, Ticket] = {}  # by id of the interrupting ticket: its victim
        self._sequence = itertools.count()
        self._size = 0

    # --- taking orders -----------------------------------------------------------------------

    def take(self, ticket: Ticket) -> None:
        progress = self._progress.get(ticket.source)
        if progress is None:  # (not setdefault: that would build one for every event)
            progress = self._progress[ticket.source] = PartitionProgress()
        progress.take(ticket.offset)
        self._size += 1
        if ticket.topic in self.interrupting_topics:
            self._interrupting[id(ticket)] = ticket
            self._ready.append(ticket)  # no cook needed, no waiting behind its order
        elif ticket.key in self._cooking or ticket.key in self._waiting:
            self._waiting.setdefault(ticket.key, deque()).append(ticket)
        elif self._has_free_cook():
            self._give_a_cook(ticket)
        else:
            self._line_up(ticket)

    def _has_free_cook(self) -> bool:
        return self.capacity == 0 or len(self._cooking) < self.capacity

    def _line_up(self, ticket: Ticket) -> None:
        self._next_up.append(ticket)
        self._waiting.setdefault(ticket.key, deque())  # later events of its key queue behind it

    def _give_a_cook(self, ticket: Ticket) -> None:
        self._cooking[ticket.key] = ticket
        self._ready.append(ticket)

    @property
    def has_ready(self) -> bool:
        """Tickets got a cook and wait for the runtime to start them."""
        return bool(self._ready)

    def ready_to_start(self) -> list[Ticket]:
        """The tickets that got a cook since the last call, in order: start each one."""
        ready, self._ready = self._ready, []
        return ready

    def start(self, ticket: Ticket, work: Work, seconds: float, now: float) -> None:
        """The ticket's work is known: it is done cooking `seconds` (real time) from `now`."""
        heapq.heappush(self._timers, (now + seconds, next(self._sequence), ticket, work))

    def withdraw(self, interrupting: Ticket) -> Ticket | None:
        """Take back the work in progress of the interrupting ticket's order, if its outputs
        are still to come: it is done in place of it. The withdrawn ticket is finished without
        its outputs when the interrupting one is finished, so both offsets are committed with
        the interrupting ticket's outputs, or neither. None: nothing of that order is still in
        progress (its work is out already, or there never was any)."""
        timer = self._work_in_progress(interrupting.key)
        if timer is None:
            return None
        cooking = timer[2]
        self._timers.remove(timer)
        heapq.heapify(self._timers)
        del self._cooking[interrupting.key]
        self._withdrawn[id(interrupting)] = cooking
        self._line_up_next_of(interrupting.key)
        self._move_the_line()
        return cooking

    def has_work_in_progress(self, key: str) -> bool:
        """Whether an event of `key` would withdraw work (its outputs still to come)."""
        return self._work_in_progress(key) is not None

    def _work_in_progress(self, key: str) -> tuple[float, int, Ticket, Work] | None:
        cooking = self._cooking.get(key)
        if cooking is None:
            return None
        return next((t for t in self._timers if t[2] is cooking and t[3].outputs), None)

    # --- work coming out ---------------------------------------------------------------------

    def done_cooking(self, now: float) -> list[tuple[Ticket, Work]]:
        """Work whose time is up, in the order it became due. Call `finish` once it is out."""
        ready = []
        while self._timers and self._timers[0][0] <= now:
            _, _, ticket, work = heapq.heappop(self._timers)
            ready.append((ticket, work))
        return ready

    def finish(self, ticket: Ticket) -> None:
        """The outputs of `ticket` are out: its offset may be committed, its key moves on."""
        if ticket.topic in self.interrupting_topics:
            self._finish_interrupting(ticket)
            return
        if self._cooking.get(ticket.key) is not ticket:
            return  # its partition was taken away meanwhile; the new owner redoes it
        self._finish_offset(ticket)
        del self._cooking[ticket.key]
        self._line_up_next_of(ticket.key)  # a cook is free: the order's next event lines up
        self._move_the_line()

    def _finish_interrupting(self, ticket: Ticket) -> None:
        if self._interrupting.pop(id(ticket), None) is None:
            return  # its partition was taken away meanwhile; the new owner redoes it
        self._finish_offset(ticket)
        withdrawn = self._withdrawn.pop(id(ticket), None)
        if withdrawn is not None:
            self._finish_offset(withdrawn)

    def _finish_offset(self, ticket: Ticket) -> None:
        self._progress[ticket.source].finish(ticket.offset)
        self._size -= 1

    def _line_up_next_of(self, key: str) -> None:
        """The order's event in the works is gone: the one behind it (if any) joins the line."""
        queue = self._waiting.pop(key, None)
        if queue:
            self._next_up.append(queue.popleft())
            self._waiting[key] = queue  # the rest stay behind it

    def _move_the_line(self) -> None:
        while self._next_up and self._has_free_cook():
            self._give_a_cook(self._next_up.popleft())

    def seconds_until_next(self, now: float) -> float | None:
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - now)

    # --- what the runtime asks ---------------------------------------------------------------

    def committable(self) -> dict[TopicPartition, int]:
        offsets = {}
        for source, progress in self._progress.items():
            offset = progress.committable()
            if offset is not None:
                offsets[source] = offset
        return offsets

    def idle_partitions(self) -> set[TopicPartition]:
        """Partitions with every event taken from them finished."""
        return {source for source, progress in self._progress.items() if not progress.in_progress}

    def is_full(self) -> bool:
        return self.capacity > 0 and self._size >= self.capacity

    @property
    def cooking(self) -> int:
        """Events given a cook and not finished: never more than the capacity."""
        return len(self._cooking)

    def __len__(self) -> int:
        """Events taken and not finished (cooking or waiting behind their key)."""
        return self._size

    def forget(self, partitions: Iterable[TopicPartition]) -> int:
        """Drop all work of partitions this instance no longer owns; the new owner redoes it.

        Returns how many events were dropped.
        """
        gone = set(partitions)
        before = self._size
        for p in gone:
            self._progress.pop(p, None)
        self._size = sum(p.in_progress for p in self._progress.values())
        self._timers = [t for t in self._timers if t[2].source not in gone]
        heapq.heapify(self._timers)
        for key, queue in list(self._waiting.items()):
            self._waiting[key] = deque(t for t in queue if t.source not in gone)
        self._next_up = deque(t for t in self._next_up if t.source not in gone)
        self._ready = [t for t in self._ready if t.source not in gone]
        self._interrupting = {i: t for i, t in self._interrupting.items() if t.source not in gone}
        # An interrupting ticket and its victim are of one order, so of one partition number:
        # co-partitioned topics' partitions of one number move together (the range assignor).
        self._withdrawn = {
            i: t
            for i, t in self._withdrawn.items()
            if i in self._interrupting and t.source not in gone
        }
        for key, ticket in list(self._cooking.items()):
            if ticket.source in gone:
                del self._cooking[key]
        lined_up = {t.key for t in self._next_up}
        for key in [k for k in self._waiting if k not in self._cooking and k not in lined_up]:
            self._line_up_next_of(key)  # its event in the works was dropped
        self._move_the_line()
        return before - self._size
