"""The seed's log lines, word for word, from a real run of the four services as processes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pizzashop.config import Settings
from pizzashop.readmodel.store import open_readmodel
from pizzashop.services import SERVICE_NAMES
from tests.shop_harness import ShopProcesses, an_order, place, wait_for, wait_until_delivered

CLOCK = r"\d\d:\d\d:\d\d\.\d\d\d"


@pytest.fixture
def processes(shop_settings: Settings, tmp_path: Path) -> Iterator[ShopProcesses]:
    shop = ShopProcesses(shop_settings.replace(log_level="INFO"), tmp_path)
    for name in SERVICE_NAMES:
        shop.start(name)
    yield shop
    shop.stop_all()


def produced(topic: str, order_id: str, value: str) -> str:
    """The seed's delivery report, with the real partition and offset."""
    return (
        rf"Event successfully produced\n - Topic '{topic}', Partition #\d+, Offset #\d+\n"
        rf" - Key: {order_id}\n - Value: {value}\n"
    )


def test_each_service_logs_the_seeds_lines(processes: ShopProcesses) -> None:
    order = an_order(name="Italo")
    order_id, customer = place(processes.settings, order), re.escape(order.customer_id)
    wait_until_delivered(open_readmodel(processes.settings.readmodel_url), [order_id], timeout=60)
    expected = {
        "assemble": [
            rf"\(msvc_assemble\) INFO {CLOCK} - Subscribed to topic\(s\): pizza-ordered, "
            rf"pizza-reserved, pizza-cancel\n",
            rf"\(msvc_assemble\) INFO {CLOCK} - Preparing order '{order_id}', "
            rf"assembling time is \d second\(s\)\n",
            rf"\(msvc_assemble\) INFO {CLOCK} - Order '{order_id}' is assembled!\n",
            produced("pizza-assembled", order_id, r'\{"baking_time": \d+\}'),
            produced("pizza-status", order_id, r'\{"status": 200, "timestamp": \d+\}'),
        ],
        "pantry": [produced("pizza-reserved", order_id, r'\{"ingredients": \[[^]]+\]\}')],
        "bake": [
            rf"Preparing order '{order_id}', baking time is \d+ second\(s\)\n",
            rf"Order '{order_id}' is baked!\n",
            produced("pizza-baked", order_id, ""),
        ],
        "delivery": [
            rf"Early warning to deliver order '{order_id}' to customer_id '{customer}'\n",
            rf"Delivering order '{order_id}' for customer_id '{customer}', delivery time is 10 second\(s\)\n",
            rf"Order '{order_id}' delivered to customer_id '{customer}'\n",
            produced("pizza-status", order_id, r'\{"status": 400, "timestamp": \d+\}'),
        ],
        "status": [
            rf"Order '{order_id}' status updated: Order received and being prepared \(100\)\n",
            rf"Order '{order_id}' status updated: Your pizza is in the oven \(200\)\n",
            rf"Order '{order_id}' status updated: Your pizza is out for delivery \(300\)\n",
            rf"Order '{order_id}' status updated: Your pizza was delivered \(400\)\n",
        ],
    }
    for name, lines in expected.items():
        log_file = processes.log_dir / f"{name}-0.log"
        for line in lines:
            wait_for(
                lambda: re.search(line, log_file.read_text()),
                timeout=30,
                what=f"{name} to log {line!r}; it logged:\n{log_file.read_text()[-3000:]}",
            )
