"""The runtime under every service: the Kafka loop, written once, and the parts it is made of.

- `loop.py`: poll a batch, hand it over, produce, commit; rebalances, outages, a stop.
- `kitchen_loop.py` / `sink_loop.py`: the two kinds of service over that loop.
- `kitchen.py`: many orders at once, one order's events in order, commit watermarks.
- `producing.py`: the two processing guarantees as two commit policies.
- `clients.py`: how the Kafka clients are configured; `changelog.py`: what a service
  remembers; `deadletters.py`: the dead-letter topic; `problems.py`: retries, logged once.

A service module never imports from here: it gives a `service.KitchenService` or a
`service.SinkService`, and `run_service` runs it.
"""

from __future__ import annotations

import logging

from pizzashop.config import Settings
from pizzashop.runtime.kitchen_loop import KitchenLoop
from pizzashop.runtime.loop import ServiceLoop
from pizzashop.runtime.sink_loop import SinkLoop
from pizzashop.service import KitchenService, Service


def loop_for(service: Service, settings: Settings) -> KitchenLoop | SinkLoop:
    if isinstance(service, KitchenService):
        return KitchenLoop(service, settings)
    return SinkLoop(service, settings)


def run_service(service: Service, settings: Settings) -> None:
    """Run one service until SIGTERM or SIGINT."""
    loop = loop_for(service, settings)
    loop.stop_on_signals()
    loop.run()


def configure_logging(service_name: str, level: str = "INFO") -> None:
    """The seed's log format: `(msvc_assemble) INFO 21:00:39.604 - message`."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter(
            f"(msvc_{service_name}) %(levelname)s %(asctime)s.%(msecs)03d - %(message)s",
            datefmt="%H:%M:%S",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


__all__ = ["KitchenLoop", "ServiceLoop", "SinkLoop", "configure_logging", "loop_for", "run_service"]
