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
from pizzashop.observe import tracing
from pizzashop.observe.server import ObserveServer
from pizzashop.runtime.collector import spare_the_collector
from pizzashop.runtime.kitchen_loop import KitchenLoop
from pizzashop.runtime.loop import ServiceLoop
from pizzashop.runtime.sink_loop import SinkLoop
from pizzashop.service import KitchenService, Service

log = logging.getLogger("pizzashop.runtime")


def loop_for(service: Service, settings: Settings) -> KitchenLoop | SinkLoop:
    if isinstance(service, KitchenService):
        return KitchenLoop(service, settings)
    return SinkLoop(service, settings)


def run_service(service: Service, settings: Settings) -> None:
    """Run one service until SIGTERM or SIGINT, with its health, metrics and traces."""
    loop = loop_for(service, settings)
    loop.stop_on_signals()
    server = ObserveServer(
        settings.observe_host, settings.observe_port, loop.readiness, lambda: loop.watch.wedged
    ).start()
    log.info("Health and metrics at %s (/healthz, /readyz, /metrics)", server.url)
    spare_the_collector()
    try:
        loop.run()
    finally:
        server.close()
        tracing.stop_tracing()


__all__ = ["KitchenLoop", "ServiceLoop", "SinkLoop", "loop_for", "run_service"]
