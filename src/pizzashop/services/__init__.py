"""The shop's four services (the table of what each consumes is `contract.SERVICES`).
Each module has a handler and a `build(settings) -> Service`."""

from __future__ import annotations

import importlib

from pizzashop.config import Settings
from pizzashop.contract import SERVICES
from pizzashop.service import Service

SERVICE_NAMES: tuple[str, ...] = tuple(SERVICES)


def services_to_run(settings: Settings) -> tuple[str, ...]:
    """The services a shop runs: every one, but the pantry only while it counts the stock."""
    return tuple(name for name in SERVICE_NAMES if settings.count_stock or name != "pantry")


def build_service(name: str, settings: Settings) -> Service:
    if name not in SERVICE_NAMES:
        raise ValueError(f"no service called {name!r} (one of: {', '.join(SERVICE_NAMES)})")
    module = importlib.import_module(f"pizzashop.services.{name}")
    service: Service = module.build(settings)
    return service
