"""A guard against a transactional producer call that never returns.

From librdkafka 2.9 on, `send_offsets_to_transaction` can block past its own timeout after
the group coordinator goes away (librdkafka issues #5456 and #5511, a fix proposed in PR
#5457). A call blocked in C cannot be interrupted from Python, so a watcher thread times each
transactional call: past its timeout plus a margin the producer is wedged. The service says so
in one ERROR line, its /healthz answers 503 "wedged", and a moment later the process exits
with WEDGED_EXIT_CODE, for whoever supervises it (`pizzashop up`, a container runtime,
Kubernetes) to start it again. The dead producer's open transaction is aborted by the broker
(after `transaction.timeout.ms`), its partitions go to a member of a newer group generation
(which fences any late commit, KIP-447), and the work is redone from the committed offsets:
nothing is lost or doubled, as after a SIGKILL. Remove this once those issues are fixed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("pizzashop.runtime")

T = TypeVar("T")

WEDGED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again later"
WEDGE_MARGIN = 15.0  # seconds past a call's own timeout before the producer counts as wedged
EXIT_GRACE = 2.0  # seconds /healthz says "wedged" before the process exits
LOOK_EVERY = 0.5


class TransactionWatch:
    """Times the transactional calls of one producer, one at a time (the loop's thread)."""

    def __init__(
        self,
        margin: float = WEDGE_MARGIN,
        grace: float = EXIT_GRACE,
        exit_process: Callable[[int], object] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.margin, self.grace, self._exit_process = margin, grace, exit_process
        self._clock = clock
        self.wedged: str | None = None  # what is wedged, in words, once it is
        self._call: tuple[str, float, float] | None = None  # (call, its timeout, deadline)
        self._watcher: threading.Thread | None = None

    def call(self, name: str, timeout: float, action: Callable[[], T]) -> T:
        """`action()`, a call to the producer whose own timeout is `timeout` seconds."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="wedge-watch", daemon=True)
            self._watcher.start()
        self._call = (name, timeout, self._clock() + timeout + self.margin)
        try:
            return action()
        finally:
            self._call = None

    def _watch(self) -> None:
        while self.wedged is None:
            time.sleep(LOOK_EVERY)
            call = self._call
            if call is not None and self._clock() > call[2]:
                self._give_up(*call[:2])

    def _give_up(self, name: str, timeout: float) -> None:
        waited = timeout + self.margin
        self.wedged = f"{name} has not returned after {waited:.0f}s (its timeout is {timeout:g}s)"
        log.error(
            "The producer is wedged: %s has not returned after %.0fs (its timeout is %gs); "
            "exiting with code %d to be started again",
            name,
            waited,
            timeout,
            WEDGED_EXIT_CODE,
        )
        time.sleep(self.grace)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit_process(WEDGED_EXIT_CODE)
