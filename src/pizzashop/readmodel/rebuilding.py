"""The read model rebuilt from the log, the source of truth: into a new generation beside the
live one while the shop keeps running, then switched to; or into a scratch one, to check the
live one against it.

A rebuild reads what the status service reads (the orders, their statuses, and the pantry's
answers and stock levels), from the beginning, and applies it with the status service's own
`apply_to` (writer.py), in batches that carry their offsets: after the switch the status
service resumes from the offsets the new generation keeps, so no change is lost or applied
twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from tqdm import tqdm

from pizzashop import contract
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import SERVICES, ContractError, Event
from pizzashop.kafka.lag import end_offsets
from pizzashop.kafka.records import record_position
from pizzashop.readmodel import OrderView, ReadModelUnusable
from pizzashop.readmodel.database import SqlDatabase
from pizzashop.readmodel.generations import Generations, generations_of
from pizzashop.readmodel.views import OrderViews
from pizzashop.readmodel.watchdog import WatchdogQueries
from pizzashop.readmodel.writer import OrderWriter, apply_to

# What the status service consumes is what its read model is made of.
TOPICS: tuple[str, ...] = tuple(str(t) for t in SERVICES["status"])
BATCH = 2000  # events per read model transaction, as the status service takes them when behind
# A rebuild reads to the ends it saw, then again to the new ends, until it is this close.
CAUGHT_UP_WITHIN = BATCH
CATCH_UP_ROUNDS = 5
# The live read model keeps moving while it is compared: compared again, up to this often.
VERIFY_ATTEMPTS = 5
QUIET_TIMEOUT = 30.0  # seconds without a record before an unfinished read gives up
CONSUME_SPELL = 0.1  # seconds
METADATA_TIMEOUT = 10.0

Positions = dict[tuple[str, int], int]  # (topic, partition) -> next offset


@dataclass(frozen=True)
class Rebuilt:
    generation: int
    where: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Difference:
    order_id: str
    live: OrderView | None
    from_the_log: OrderView | None

    def line(self) -> str:
        return (
            f"{self.order_id}: live {_shown(self.live)}; from the log {_shown(self.from_the_log)}"
        )


@dataclass
class _Batch:
    events: list[Event] = field(default_factory=list)
    sources: list[tuple[str, int, int]] = field(default_factory=list)
    offsets: Positions = field(default_factory=dict)
    records: int = 0


def rebuild(settings: Settings, show_progress: bool = True) -> Rebuilt:
    """A new generation of the read model built from the log, made live once caught up."""
    generations = generations_of(settings.readmodel_url)
    try:
        with generations.rebuilding():
            return _build_and_switch(settings, generations, show_progress)
    finally:
        generations.close()


def _build_and_switch(settings: Settings, generations: Generations, show: bool) -> Rebuilt:
    live = generations.live()
    new = live + 1
    started = time.monotonic()
    database = generations.fresh(new)
    try:
        with _log_reader(settings) as reader:
            events = _catch_up(settings, reader, OrderWriter(database), show)
        _carry_over(generations, live, database)
    finally:
        database.close()
    generations.switch_to(new)
    return Rebuilt(new, generations.describe(new), events, time.monotonic() - started)


def verify(settings: Settings, show_progress: bool = False) -> list[Difference]:
    """Every order whose live view differs from the one the log gives, read up to the same
    offsets as the live read model (orders it has not reached yet are no difference)."""
    generations = generations_of(settings.readmodel_url)
    live_database = generations.open(generations.live())
    live = OrderViews(live_database)
    try:
        with generations.scratch() as scratch, _log_reader(settings) as reader:
            from_the_log = OrderWriter(scratch)
            for _ in range(VERIFY_ATTEMPTS):
                target = live.read_up_to()
                _read_up_to(reader, from_the_log, target, show_progress)
                differences = _differences(live, OrderViews(scratch))
                if live.read_up_to() == target:  # it did not move while compared
                    break
            return differences
    finally:
        live_database.close()
        generations.close()


def _catch_up(
    settings: Settings, reader: Consumer, writer: OrderWriter, show_progress: bool
) -> int:
    """Read to the topics' ends, then to their new ends, until close enough to switch."""
    applied = 0
    for round_number in range(CATCH_UP_ROUNDS):
        ends = end_offsets(settings, TOPICS, METADATA_TIMEOUT)
        left = _left(writer.stored_offsets(), ends)
        if left == 0 or (round_number > 0 and left <= CAUGHT_UP_WITHIN):
            break
        applied += _read_up_to(reader, writer, ends, show_progress)
    return applied


def _carry_over(generations: Generations, live: int, new: SqlDatabase) -> None:
    """What the new generation takes from the live one: its sign-ins, a seq above its last
    (so live streams miss nothing), and which orders never placed it has already parked."""
    try:
        old = generations.open(live)
    except ReadModelUnusable:
        return  # an older schema: its sign-ins stay behind, customers sign in again
    try:
        carry_over_sign_ins(old, new)
        new.number_history_after(OrderViews(old).last_history_seq())
        OrderWriter(new).forget_unplaced(_already_parked(OrderViews(old), new))
    finally:
        old.close()


def carry_over_sign_ins(old: SqlDatabase, new: SqlDatabase) -> None:
    """The web's sign-ins (web/sign_ins.py) live in each generation's database, not built from
    the log: copied whole, and a sign-out there stays a sign-out here."""
    with old.transaction(writing=False) as cursor:
        cursor.execute("SELECT session_id, customer_id, started_at, ended_at FROM web_sessions")
        rows = [tuple(row) for row in cursor.fetchall()]
    p = new.placeholder
    with new.transaction(writing=False) as cursor:
        cursor.executemany(
            "INSERT INTO web_sessions (session_id, customer_id, started_at, ended_at) "
            f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (session_id) DO UPDATE SET "
            "ended_at = COALESCE(web_sessions.ended_at, excluded.ended_at)",
            rows,
        )


def _already_parked(old: OrderViews, new: SqlDatabase) -> set[str]:
    """Orders never placed whose events the live generation had read and then forgotten (its
    watchdog parked them in the dead-letter topic): parking them again would repeat them."""
    read = old.read_up_to()
    unplaced = WatchdogQueries(new).unplaced_events(seen_before=2**62)
    unknown_to_old = {e.order_id for e in unplaced if old.get_order(e.order_id) is None}
    not_read_yet = {
        e.order_id for e in unplaced if e.source[2] >= read.get((e.source[0], e.source[1]), 0)
    }
    return unknown_to_old - not_read_yet


def _read_up_to(reader: Consumer, writer: OrderWriter, ends: Positions, show: bool) -> int:
    """Apply every event between the writer's offsets and `ends`; how many records were read."""
    stored = writer.stored_offsets()
    todo = {tp: end for tp, end in ends.items() if stored.get(tp, 0) < end}
    reader.assign([TopicPartition(t, p, stored.get((t, p), OFFSET_BEGINNING)) for t, p in todo])
    read = 0
    with tqdm(
        total=_left(stored, todo), unit=" events", unit_scale=True, disable=not show, leave=show
    ) as bar:
        while todo:
            batch = _next_batch(reader, todo)
            if batch.offsets:
                apply_to(writer, batch.events, batch.offsets, batch.sources)
            read += batch.records
            bar.update(batch.records)
    reader.unassign()
    return read


def _next_batch(reader: Consumer, todo: Positions) -> _Batch:
    """The next records before each partition's end; partitions reaching it leave `todo`."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    # consume() returns early only with a full batch: asked for short spells, it gives what
    # has come, so the last batch does not wait out the timeout.
    while not (messages := reader.consume(BATCH, CONSUME_SPELL)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no record came in {QUIET_TIMEOUT:g}s while reading {sorted(todo)}")
    batch = _Batch()
    for message in messages:
        at_end = _is_partition_end(message)
        topic, partition, offset = record_position(message)
        where = (topic, partition)
        if at_end or where not in todo or offset >= todo[where]:
            todo.pop(where, None)
            continue
        batch.records += 1
        batch.offsets[where] = offset + 1
        event = _event_of(topic, message)
        if event is not None:  # one that is not was parked by the status service: skipped
            batch.events.append(event)
            batch.sources.append((topic, partition, offset))
        if offset + 1 >= todo[where]:
            todo.pop(where)
    return batch


def _is_partition_end(message: Message) -> bool:
    """True for the event of a partition's end; any other error is raised."""
    error = message.error()
    if error is not None and error.code() == KafkaError._PARTITION_EOF:
        return True
    if error is not None:
        raise KafkaException(error)
    return False


def _event_of(topic: str, message: Message) -> Event | None:
    _, timestamp = message.timestamp()
    try:
        return contract.decode(topic, message.key(), message.value(), timestamp)
    except ContractError:
        return None


def _left(positions: Positions, ends: Positions) -> int:
    return sum(max(0, end - positions.get(tp, 0)) for tp, end in ends.items())


@contextmanager
def _log_reader(settings: Settings) -> Iterator[Consumer]:
    """A consumer outside any group (assigned by hand), reading only committed records, as the
    status service does."""
    consumer = Consumer(
        {
            **kafka_client_config(settings),
            "group.id": f"pizzashop-rebuild-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        yield consumer
    finally:
        consumer.close()


def _differences(live: OrderViews, from_the_log: OrderViews) -> list[Difference]:
    """Orders placed on either side whose views differ (order, status, history, placing)."""
    live_views = {v.order_id: v for v in live.every_order()}
    log_views = {v.order_id: v for v in from_the_log.every_order()}
    placed = {i for views in (live_views, log_views) for i, v in views.items() if v.order}
    return [
        Difference(order_id, live_views.get(order_id), log_views.get(order_id))
        for order_id in sorted(placed)
        if _compared(live_views.get(order_id)) != _compared(log_views.get(order_id))
    ]


def _compared(view: OrderView | None) -> object:
    """What must agree: everything but the history's seq numbers, which count writes."""
    if view is None:
        return None
    history = [(e.status, e.timestamp) for e in view.history]
    placing = (view.order, view.customer_id, view.placed_at)
    return (*placing, view.status, history, view.updated_at, view.sold_out)


def _shown(view: OrderView | None) -> str:
    if view is None:
        return "has no such order"
    steps = ", ".join(f"{int(e.status)}@{e.timestamp}" for e in view.history)
    short = f", sold out of {view.sold_out}" if view.sold_out else ""
    return f"status {int(view.status)} ({steps}){short}"
