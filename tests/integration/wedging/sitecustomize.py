"""Makes one service's producer wedge as librdkafka 2.9+ can (issues #5456, #5511).

Python imports this module at start-up when its folder is on PYTHONPATH. In the first
`pizzashop service SERVICE` process to send offsets to a transaction (SERVICE and a marker
file named by PIZZASHOP_TEST_WEDGE), `send_offsets_to_transaction` never returns. Every later
process, the restarted one too, runs the real client untouched.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import confluent_kafka

SERVICE, MARKER = os.environ["PIZZASHOP_TEST_WEDGE"].split(":", 1)


def _first_to_wedge() -> bool:
    if sys.argv[-2:] != ["service", SERVICE]:
        return False
    try:
        os.close(os.open(MARKER, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


class WedgingProducer(confluent_kafka.Producer):
    def send_offsets_to_transaction(self, *arguments: Any, **keywords: Any) -> None:
        if _first_to_wedge():
            threading.Event().wait()  # blocked past every timeout, as in C
        super().send_offsets_to_transaction(*arguments, **keywords)


confluent_kafka.Producer = WedgingProducer  # type: ignore[misc]

if sys.argv[-2:] == ["service", SERVICE] and not os.path.exists(MARKER):
    # The guard ends a call its timeout plus a margin after it began: in the process that is
    # to wedge, that timeout is short, so the test waits 18 s for it rather than 45 s. Its
    # first call of send_offsets_to_transaction wedges; no other call takes the timeout first.
    from pizzashop.runtime import producing

    producing.TRANSACTION_CALL_TIMEOUT = 3.0
