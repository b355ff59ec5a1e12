"""The shop's services running against the session's real broker, for pipeline tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pizzashop.config import Settings
from pizzashop.services import SERVICE_NAMES
from tests.shop_harness import RunningShop


@pytest.fixture
def shop(shop_settings: Settings) -> Iterator[RunningShop]:
    """All four services, each in a thread of this process, on the real broker."""
    running = RunningShop(shop_settings)
    for name in SERVICE_NAMES:
        running.start(name)
    yield running
    running.stop_all()
    running.runners.clear()  # let their Kafka clients go before the session's broker stops
