"""The API's docs page in a real browser, with the shop's content policy and nothing but the
app to reach: Swagger UI draws every operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Route, expect, sync_playwright

from pizzashop.config import load_settings
from pizzashop.readmodel.store import open_readmodel
from pizzashop.web.app import create_app
from tests.e2e.conftest import CHROMIUM_FLAGS
from tests.shop_harness import served
from tests.unit.test_web import AcknowledgingTaker


@pytest.fixture
def web_url(tmp_path: Path) -> Iterator[str]:
    """The web app alone (the docs need no broker) on a free port."""
    settings = load_settings(state_dir=tmp_path, secret_key="test-secret")
    read_model = open_readmodel(settings.readmodel_url)
    app = create_app(settings, read_model, AcknowledgingTaker())  # type: ignore[arg-type]  # a stand-in for the OrderTaker
    try:
        with served(app) as running:
            yield running.url
    finally:
        read_model.close()


def test_the_api_docs_work_offline_under_the_content_policy(
    web_url: str, chromium_path: str
) -> None:
    elsewhere: list[str] = []
    refused_by_policy: list[str] = []

    def only_the_app(route: Route) -> None:
        if urlsplit(route.request.url).netloc == urlsplit(web_url).netloc:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    def note_policy_refusals(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused_by_policy.append(message.text)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        try:
            page.route("**/*", only_the_app)
            page.on("console", note_policy_refusals)
            page.goto(web_url + "/docs")
            expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
            expect(page.locator("#swagger-ui")).to_contain_text("/api/orders/{order_id}/events")
        finally:
            browser.close()
    assert not elsewhere, f"the docs asked for files elsewhere: {elsewhere}"
    assert not refused_by_policy, f"the content policy refused: {refused_by_policy}"
