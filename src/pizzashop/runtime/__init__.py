"""The runtime under every service: the Kafka loop, written once, and the parts it is made of.

- `loop.py`: read a batch, hand it to the work, commit; rebalances, outages, a stop.
- `kitchen_work.py` / `sink_work.py`: what the two kinds of service do with a batch.
- `checkpoint.py`: what and when to commit; `producing.py`: the two processing guarantees.
- `kitchen.py`: many orders at once, one order's events in order, commit watermarks.
- `memory.py`: what a kitchen service remembers, restored and looked after (`changelog.py`:
  its state and its changelog topic).
- `clients.py`: the Kafka clients, configured and made by factories; `tickets.py`: a record
  decoded; `deadletters.py`: the dead-letter topic; `problems.py`: retries, logged once;
  `wedge.py`: the guard against a transactional call that never returns.

A service module never imports from here: it gives a `service.KitchenService` or a
`service.SinkService`, and `run_service` runs it.
"""

from __future__ import annotations

import logging

from pizzashop.config import Settings
from pizzashop.observe import tracing
from pizzashop.observe.server import ObserveServer
from pizzashop.registry import use_schema_registry
from pizzashop.runtime.clients import KAFKA, Clients
from pizzashop.runtime.collector import spare_the_collector
from pizzashop.runtime.kitchen_work import KitchenWork
from pizzashop.runtime.loop import ServiceLoop
from pizzashop.runtime.sink_work import SinkWork
from pizzashop.service import KitchenService, Service

log = logging.getLogger("pizzashop.runtime")


def loop_for(service: Service, settings: Settings, clients: Clients = KAFKA) -> ServiceLoop:
    work = (
        KitchenWork(service, settings)
        if isinstance(service, KitchenService)
        else SinkWork(service, settings)
    )
    return ServiceLoop(work, settings, clients)


def run_service(service: Service, settings: Settings) -> None:
    """Run one service until SIGTERM or SIGINT, with its health, metrics and traces."""
    use_schema_registry(settings)  # away or refusing at the start: one line, before any record
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


__all__ = ["KitchenWork", "ServiceLoop", "SinkWork", "loop_for", "run_service"]
