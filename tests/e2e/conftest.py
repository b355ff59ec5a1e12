"""The whole shop for the browser: five services on the session's broker, and the web app."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from pizzashop.commands.ordering import OrderTaker
from pizzashop.config import Settings
from pizzashop.readmodel.store import open_readmodel
from pizzashop.services import SERVICE_NAMES
from pizzashop.web.app import create_app
from tests.ports import free_port
from tests.shop_harness import RunningShop, served

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


ADMIN_TOKEN = "operator-" + secrets.token_urlsafe(8)


@dataclass
class OpenShop:
    url: str
    settings: Settings
    kitchen: RunningShop  # its services, to stop and start one


@contextmanager
def shop_open(settings: Settings) -> Iterator[OpenShop]:
    """Every service and the web app (with the admin token, on a free port)."""
    settings = settings.replace(web_port=free_port(), admin_token=ADMIN_TOKEN)
    services = RunningShop(settings)
    for name in SERVICE_NAMES:
        services.start(name)
    app = create_app(settings, open_readmodel(settings.readmodel_url), OrderTaker(settings))
    try:
        with served(app, settings.web_port, start_timeout=30) as running:
            yield OpenShop(running.url, settings, services)
    finally:
        services.stop_all()


@pytest.fixture
def open_shop(shop_settings: Settings) -> Iterator[OpenShop]:
    # Slow enough to watch the status move in the page, fast enough for a test.
    with shop_open(shop_settings.replace(time_scale=0.2)) as shop:
        yield shop


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's chromium is missing: run scripts/ensure-chromium (make test does)"
    return path
