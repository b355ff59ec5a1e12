"""The shop's operator in a real browser: the pipeline page moves live through a burst."""

from __future__ import annotations

from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from pizzashop.readmodel.store import open_readmodel
from pizzashop.web.admin import NO_FIGURE, pipeline_url
from tests.e2e.conftest import CHROMIUM_FLAGS, OpenShop
from tests.e2e.test_browser import SCREENSHOTS
from tests.shop_harness import an_order, place, wait_for, wait_until_delivered

DESKTOP: ViewportSize = {"width": 1366, "height": 768}
BURST = 30


def figure(page: Page, stage: str, name: str) -> str:
    return page.locator(f'[data-stage="{stage}"] [data-figure="{name}"]').inner_text()


def orders_in_the_works(page: Page) -> list[int]:
    return [int(text) for text in page.locator('[data-figure="in_works"]').all_inner_texts()
            if text.isdigit()]  # fmt: skip


def test_the_pipeline_page_follows_a_burst_of_orders(
    open_shop: OpenShop, chromium_path: str
) -> None:
    url = pipeline_url(open_shop.settings, host="127.0.0.1")
    assert url is not None, "the shop under test has an admin token"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport=DESKTOP)
        try:
            page.goto(url)
            expect(page).to_have_url(open_shop.url + "/admin/pipeline")  # the token left it
            expect(page.locator("h1")).to_have_text("The pipeline")
            expect(page.locator("#broker-state")).to_have_text("broker answering")
            page.evaluate("window.stillTheSamePage = true")
            # The shop is shared with the other browser tests: their last pizza may still be
            # on its way. The burst below is measured from a quiet shop.
            wait_for(lambda: sum(orders_in_the_works(page)) == 0, 60, "the earlier orders to end")
            delivered_per_second = figure(page, "delivery", "per_second")

            order_ids = [place(open_shop.settings, an_order(f"Guest {n}")) for n in range(BURST)]

            # The oven is the longest step: catch the burst there, then one snapshot later
            # (the broker's figures settle a moment after the statuses show).
            in_the_oven = page.locator('[data-stage="bake"] [data-figure="in_works"]')
            expect(in_the_oven).not_to_have_text("0", timeout=30_000)
            taken_at = page.locator("#taken-at").inner_text()
            expect(page.locator("#taken-at")).not_to_have_text(taken_at, timeout=10_000)
            assert sum(orders_in_the_works(page)) > 0, (
                "the burst went through between two snapshots"
            )
            page.screenshot(path=str(SCREENSHOTS / "pipeline.png"), full_page=True)
            expect(
                page.locator('[data-stage="delivery"] [data-figure="per_second"]')
            ).not_to_have_text(delivered_per_second, timeout=60_000)
            expect(page.locator('[data-stage="delivery"] [data-figure="p50_ms"]')).not_to_have_text(
                NO_FIGURE
            )
            page.wait_for_function(
                """() => [...document.querySelectorAll('[data-figure="in_works"]')]
                          .every(e => e.textContent === "0" || !/^[0-9]+$/.test(e.textContent))""",
                timeout=60_000,
            )
            wait_until_delivered(
                open_readmodel(open_shop.settings.readmodel_url), order_ids, timeout=30
            )
            assert figure(page, "assemble", "lag").isdigit(), "the assemble group's lag is shown"
            assert page.evaluate("window.stillTheSamePage") is True, "the page was reloaded"
        finally:
            browser.close()
