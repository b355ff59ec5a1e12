"""The faults a chaos run injects, drawn from one seeded generator, and how each is done.

The draw decides what, where and for how long; only when depends on the machine (a fault
waits while its target is not there to hit: an instance still restarting, another node
down). So a seed replays the same faults in the same order.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from confluent_kafka import KafkaError, Message, Producer

from pizzashop.chaos.checks import Position
from pizzashop.chaos.instances import INSTANCE_NAMES, ServiceInstances
from pizzashop.config import Settings, kafka_client_config
from pizzashop.contract import Topic
from pizzashop.kafka.cluster import LocalKafka
from pizzashop.kafka.jars import KafkaSetupError
from pizzashop.kafka.records import record_position

log = logging.getLogger("pizzashop.chaos")

# A consumer that misses heartbeats this long is out of its group (runtime/clients.py).
CONSUMER_SESSION_TIMEOUT = 10.0


class Kind(StrEnum):
    KILL = "kill"  # SIGKILL an instance; it is restarted a second later
    PAUSE = "pause"  # SIGSTOP an instance past the session timeout, then SIGCONT: a zombie
    NODE = "node"  # SIGKILL a broker node, start it again a few seconds later
    POISON = "poison"  # a record that is not an event, into a pipeline or pantry topic
    BURST = "burst"  # many orders at once


@dataclass(frozen=True)
class Poison:
    what: str
    topic: Topic
    key: bytes | None
    value: bytes | None


# pizza-baked's value is ignored by contract, so only its key can be poison there.
POISONS: tuple[Poison, ...] = (
    *(
        Poison("garbage bytes", t, b"poison", b"\xff\x00\xfe{not json")
        for t in (Topic.ORDERED, Topic.ASSEMBLED, Topic.STATUS, Topic.CANCEL, Topic.PANTRY)
    ),
    Poison("wrong JSON", Topic.ORDERED, b"poison", b'{"order": "a pizza"}'),
    Poison("wrong JSON", Topic.ASSEMBLED, b"poison", b'{"baking_time": "soon"}'),
    Poison("wrong JSON", Topic.STATUS, b"poison", b'{"state": 400}'),
    Poison("wrong JSON", Topic.CANCEL, b"poison", b'{"when": "now"}'),
    Poison("unknown status", Topic.STATUS, b"poison", b'{"status": 999}'),
    Poison("unknown ask", Topic.PANTRY, b"poison", b'{"ask": "everything"}'),
    Poison("wrong JSON", Topic.RESERVED, b"poison", b'{"sold_out": 3}'),
    *(
        Poison("no key", t, None, b'{"status": 300}')
        for t in (Topic.ORDERED, Topic.ASSEMBLED, Topic.BAKED, Topic.STATUS, Topic.CANCEL)
    ),
)


@dataclass(frozen=True)
class Fault:
    kind: Kind
    target: str  # an instance, a node, a poison, or a number of orders
    hold: float = 0.0  # seconds the fault lasts (a pause, a node down)
    poison: Poison | None = None

    def __str__(self) -> str:
        held = f" for {self.hold:.1f}s" if self.hold else ""
        return f"{self.kind} {self.target}{held}"


@dataclass
class Happened:
    """A fault as it went: when it began and when the shop had all its parts back (seconds
    since the run began)."""

    fault: Fault
    began: float
    ended: float | None = None


def draw_faults(
    rng: random.Random, nodes: int, gap: tuple[float, float]
) -> Iterator[tuple[float, Fault]]:
    """(seconds to wait, fault) for ever: the first five are one of each kind, in a random
    order, so that even a short run meets them all."""
    first = list(Kind)
    rng.shuffle(first)
    while True:
        kind = first.pop(0) if first else rng.choice(list(Kind))
        yield rng.uniform(*gap), _fault_of(kind, rng, nodes)


def _fault_of(kind: Kind, rng: random.Random, nodes: int) -> Fault:
    match kind:
        case Kind.KILL:
            return Fault(kind, rng.choice(INSTANCE_NAMES))
        case Kind.PAUSE:
            # Past the session timeout, so the group moves on and the paused one is a zombie.
            hold = CONSUMER_SESSION_TIMEOUT + rng.uniform(2, 6)
            return Fault(kind, rng.choice(INSTANCE_NAMES), hold)
        case Kind.NODE:
            return Fault(kind, f"node-{rng.randrange(nodes)}", rng.uniform(3, 10))
        case Kind.POISON:
            poison = rng.choice(POISONS)
            return Fault(kind, f"{poison.what} on {poison.topic}", poison=poison)
        case Kind.BURST:
            return Fault(kind, f"{rng.randint(30, 80)} orders")


class Injector:
    """Does the faults, one call at a time from the run's loop; never waits on them itself."""

    def __init__(
        self,
        settings: Settings,
        kafka: LocalKafka,
        instances: ServiceInstances,
        burst: Callable[[int], None],
        clock: Callable[[], float],
    ) -> None:
        self._kafka = kafka
        self._instances = instances
        self._burst = burst
        self._clock = clock
        self._poison_producer = Producer(
            {**kafka_client_config(settings), "enable.idempotence": True, "acks": "all"}
        )
        self.happened: list[Happened] = []
        self.poison: list[Position] = []
        self._poison_refused: list[str] = []
        self._nodes_not_back: list[str] = []
        self._node_thread: threading.Thread | None = None
        self._paused: dict[str, tuple[float, Happened]] = {}  # instance -> (resume at, fault)
        self._killed: dict[str, Happened] = {}

    def can_do(self, fault: Fault) -> bool:
        """Whether the fault's target is there to hit (and no node is down, for a node fault)."""
        if fault.kind in (Kind.KILL, Kind.PAUSE):
            return self._instances.is_up(fault.target)
        if fault.kind is Kind.NODE:
            return self._node_thread is None and self._kafka.is_running()
        return True

    def do(self, fault: Fault) -> None:
        happened = Happened(fault, self._clock())
        self.happened.append(happened)
        log.warning("%7.1fs  fault: %s", happened.began, fault)
        match fault.kind:
            case Kind.KILL:
                self._instances.kill(fault.target)
                self._killed[fault.target] = happened
            case Kind.PAUSE:
                self._instances.pause(fault.target)
                self._paused[fault.target] = (happened.began + fault.hold, happened)
            case Kind.NODE:
                self._node_thread = threading.Thread(
                    target=self._node_down, args=(happened,), name="chaos-node", daemon=True
                )
                self._node_thread.start()
            case Kind.POISON:
                assert fault.poison is not None, "a poison fault carries its poison"
                self._write_poison(fault.poison)
                happened.ended = happened.began
            case Kind.BURST:
                self._burst(int(fault.target.split()[0]))
                happened.ended = happened.began

    def look_after(self) -> None:
        """Resume paused instances whose time is up; note faults that are over."""
        now = self._clock()
        for instance, (resume_at, happened) in list(self._paused.items()):
            if now >= resume_at:
                self._instances.resume(instance)
                happened.ended = self._clock()
                del self._paused[instance]
                log.warning("%7.1fs  resumed %s", happened.ended, instance)
        for instance, happened in list(self._killed.items()):
            if self._instances.is_up(instance):
                happened.ended = self._clock()
                del self._killed[instance]
        if self._node_thread is not None and not self._node_thread.is_alive():
            self._node_thread = None
        self._poison_producer.poll(0)

    def all_over(self) -> bool:
        return not self._paused and not self._killed and self._node_thread is None

    def _node_down(self, happened: Happened) -> None:
        index = int(happened.fault.target.rpartition("-")[2])
        self._kafka.kill_node(index)
        time.sleep(happened.fault.hold)  # the fault itself: the node stays down this long
        if self._bring_back(index, happened.fault.target):
            happened.ended = self._clock()
            log.warning("%7.1fs  %s is back", happened.ended, happened.fault.target)

    def _bring_back(self, index: int, node: str) -> bool:
        """Start the node again. On a loaded machine it may answer later than the broker's start
        timeout; it gets a second one before it counts as not back."""
        try:
            self._kafka.start_node(index)
            return True
        except KafkaSetupError as e:
            log.warning("%s is slow to answer (%s); waiting once more", node, str(e)[:120])
        try:
            self._kafka.wait_until_ready()
            return True
        except KafkaSetupError:
            self._nodes_not_back.append(f"{node} did not come back within two start timeouts")
            return False

    def _write_poison(self, poison: Poison) -> None:
        key = None if poison.key is None else poison.key + f"-{len(self.poison)}".encode()

        def written(error: KafkaError | None, message: Message) -> None:
            if error is None:
                self.poison.append(record_position(message))
            else:
                self._poison_refused.append(error.str())

        self._poison_producer.produce(
            str(poison.topic), key=key, value=poison.value, on_delivery=written
        )

    def close(self, timeout: float = 30.0) -> list[str]:
        """Waits for the poison's acknowledgements; the problems met (poison not written)."""
        unsent = self._poison_producer.flush(timeout)
        return (
            self._nodes_not_back
            + self._poison_refused
            + ([f"{unsent} poison records unacknowledged"] if unsent else [])
        )
