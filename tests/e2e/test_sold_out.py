"""A choice sold out and back, live: the menu page, open and never reloaded, marks a choice sold
out when the pantry runs out of it, and available again once the operator restocks it from the
admin page, in the browser too."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pizzashop.config import Settings
from pizzashop.web.admin import pipeline_url
from tests.e2e.conftest import CHROMIUM_FLAGS, OpenShop, shop_open
from tests.e2e.test_browser import PHONE
from tests.e2e.test_pipeline_page import DESKTOP
from tests.shop_harness import an_order, place

# On the pantry tests' broker, whose pantry starts with one (tests/conftest.py), and which no
# other test there orders: its level is this test's own.
SCARCE = "Eggs"
SOLD_OUT = re.compile(r"\bsold-out\b")
SEEN_WITHIN = 30_000  # ms: the read model, the door's half-second levels, menu.js's two seconds


@pytest.fixture
def scarce_shop(pantry_cluster: Settings, shop_settings: Settings) -> Iterator[OpenShop]:
    """The shop at full speed on the pantry tests' broker, its pantry holding one egg."""
    on_the_pantry_cluster = shop_settings.replace(
        bootstrap_servers=pantry_cluster.bootstrap_servers,
        replication_factor=pantry_cluster.replication_factor,
        pantry_stock=pantry_cluster.pantry_stock,
    )
    with shop_open(on_the_pantry_cluster) as shop:
        yield shop


def customer_on_the_menu(browser: Browser, shop: OpenShop) -> Page:
    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(shop.url + "/signin")
    page.fill("#name", "Ada")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Build your pizza")
    return page


def operator_on_the_admin_page(browser: Browser, shop: OpenShop) -> Page:
    """In a browser of its own: the operator is not the customer."""
    url = pipeline_url(shop.settings, host="127.0.0.1")
    assert url is not None, "the shop under test has an admin token"
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(url)
    expect(page.locator("#restock")).to_be_visible()
    return page


def left_of(shop: OpenShop, ingredient: str) -> int:
    """What the door says is left: the starting stock, unless an earlier run on an outside
    cluster moved it (this test leaves it as it found it)."""
    left: int = httpx.get(f"{shop.url}/api/stock", timeout=10).json()["stock"][ingredient]
    assert 1 <= left <= 5, f"{ingredient} should start at 1 for this test, not {left}"
    return left


def test_a_choice_runs_out_and_comes_back_on_the_open_menu_without_a_reload(
    scarce_shop: OpenShop, chromium_path: str
) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        try:
            menu = customer_on_the_menu(browser, scarce_shop)
            choice = menu.locator(f'label[data-ingredient="{SCARCE}"]')
            expect(choice).not_to_have_class(SOLD_OUT)
            menu.evaluate("window.stillTheSamePage = true")

            # Other customers take the last of it.
            left = left_of(scarce_shop, SCARCE)
            for n in range(left):
                place(scarce_shop.settings, an_order(f"Egg lover {n}", (SCARCE,)))
            expect(choice).to_have_class(SOLD_OUT, timeout=SEEN_WITHIN)
            expect(choice.locator("input")).to_be_disabled()
            expect(choice).to_contain_text("(sold out)")

            admin = operator_on_the_admin_page(browser, scarce_shop)
            level = admin.locator(f'#stock tr[data-ingredient="{SCARCE}"] [data-left]')
            expect(level).to_have_text("0", timeout=SEEN_WITHIN)
            admin.select_option("#restock-ingredient", SCARCE)
            admin.fill("#restock-amount", str(left))
            admin.click("#restock button[type=submit]")
            expect(admin.locator("#restocked")).to_have_text(
                f"Sent to the pantry: {left} more {SCARCE}."
            )
            expect(level).to_have_text(str(left), timeout=SEEN_WITHIN)

            expect(choice).not_to_have_class(SOLD_OUT, timeout=SEEN_WITHIN)
            expect(choice.locator("input")).to_be_enabled()
            expect(choice).not_to_contain_text("(sold out)")
            assert menu.evaluate("window.stillTheSamePage") is True, "the menu was reloaded"
        finally:
            browser.close()
