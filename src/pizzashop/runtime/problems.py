"""Living with a broker that comes and goes: problems logged once, waits that grow."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaException

log = logging.getLogger("pizzashop.runtime")

T = TypeVar("T")

# Each wait on Kafka while a service connects: short, so that a stop is noticed between tries
# (SIGTERM only sets a flag; a call blocked in librdkafka does not see it).
KAFKA_STEP_TIMEOUT = 1.0


class StoppedWaiting(Exception):
    """The service was asked to stop while it waited for Kafka (or the store) to work again."""


class Backoff:
    """Waits that double from 0.1 s up to 5 s while something keeps failing."""

    def __init__(self, first: float = 0.1, longest: float = 5.0) -> None:
        self.first, self.longest, self._next = first, longest, first

    def next(self) -> float:
        wait, self._next = self._next, min(self._next * 2, self.longest)
        return wait

    def reset(self) -> None:
        self._next = self.first


class ProblemLog:
    """Logs a recurring problem once when it starts and once when it is over, not every time."""

    def __init__(self) -> None:
        self._active: dict[str, str] = {}

    def report(self, what: str, detail: str) -> None:
        if what not in self._active:
            log.warning("%s (will keep retrying, logged once)", detail)
        self._active[what] = detail

    def active(self) -> dict[str, str]:
        """The problems going on now: what fails, and the last word on it."""
        return dict(self._active)

    def clear(self, what: str) -> None:
        if self._active.pop(what, None) is not None:
            log.info("Recovered: %s works again", what)


def keep_trying(
    what: str,
    action: Callable[[], T],
    problems: ProblemLog,
    stopping: threading.Event,
    where: str = "",
) -> T:
    """`action()`, again and again with growing waits while Kafka (or the store, `where`) fails
    it; given up only when the service is stopping (StoppedWaiting). The first failure is
    logged at once."""
    backoff = Backoff()
    while True:
        try:
            result = action()
        except (KafkaException, OSError, RuntimeError) as e:
            if stopping.is_set():
                raise StoppedWaiting(what) from e
            problems.report(what, f"could not {what}{where}: {e}; retrying")
            stopping.wait(backoff.next())
        else:
            problems.clear(what)
            return result
