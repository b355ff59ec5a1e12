"""A customer in a real browser: sign in, order, watch the pizza arrive without reloading."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import ViewportSize, expect, sync_playwright

from tests.e2e.conftest import CHROMIUM_FLAGS, OpenShop

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
PHONE: ViewportSize = {"width": 412, "height": 915}


def test_order_a_pizza_and_watch_it_delivered(open_shop: OpenShop, chromium_path: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport=PHONE)
        try:
            page.goto(open_shop.url + "/")
            expect(page).to_have_url(open_shop.url + "/signin")
            page.fill("#name", "Italo")
            page.click("button[type=submit]")

            expect(page.locator("h1")).to_have_text("Build your pizza")
            page.check("input[name=sauce][value='Pesto']")
            page.check("input[name=cheese][value='Gouda']")
            page.check("input[name=main_topping][value='Chicken']")
            page.check("input[name=extra_toppings][value='Mushroom']")
            page.check("input[name=extra_toppings][value='Onion']")
            page.screenshot(path=str(SCREENSHOTS / "menu.png"), full_page=True)
            page.click("#menu button[type=submit]")

            expect(page.locator("#confirmation")).to_contain_text("your order is placed")
            order_id = page.locator("#order-id").inner_text()
            expect(page.locator("main")).to_contain_text("with Mushroom, Onion")

            # Open the order's own page, then watch it move with no reload.
            page.goto(f"{open_shop.url}/orders/{order_id}")
            page.evaluate("window.stillTheSamePage = true")
            assert page.locator("#status-text").get_attribute("data-status") != "400", (
                "the order was delivered before its page opened: nothing left to watch"
            )
            expect(page.locator("#status-text")).to_have_text(
                "Your pizza was delivered", timeout=60_000
            )
            assert page.evaluate("window.stillTheSamePage") is True, "the page was reloaded"
            expect(page.locator("#timeline li.done")).to_have_count(4)
            page.screenshot(path=str(SCREENSHOTS / "delivered.png"), full_page=True)

            page.click("text=My orders")
            expect(page.locator(".orders li")).to_have_count(1)
            expect(page.locator(".orders li")).to_contain_text("Your pizza was delivered")
        finally:
            browser.close()


def test_cancel_an_order_from_its_page_until_the_pizza_is_assembled(
    open_shop: OpenShop, chromium_path: str
) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport=PHONE)
        try:
            page.goto(open_shop.url + "/signin")
            page.fill("#name", "Ada")
            page.click("button[type=submit]")

            def order_a_pizza() -> None:
                page.goto(open_shop.url + "/")
                page.check("input[name=sauce][value='Tomato']")
                page.check("input[name=cheese][value='Mozzarella']")
                page.check("input[name=main_topping][value='Pepperoni']")
                page.click("#menu button[type=submit]")
                expect(page.locator("#confirmation")).to_contain_text("your order is placed")

            # With the pantry away, orders wait for their ingredients: nothing is assembled.
            kitchen = open_shop.kitchen
            (pantry,) = [runner for runner in kitchen.runners if runner.name == "pantry"]
            kitchen.stop(pantry)
            order_a_pizza()
            page.click("#cancel-order button")
            expect(page.locator("#cancel-outcome")).to_have_text("Your order is cancelled.")
            expect(page.locator("#status-text")).to_have_text("Your order was cancelled")
            expect(page.locator("#cancel-order")).to_have_count(0)

            # Left open, the page hides the button once the pizza is assembled.
            order_a_pizza()
            expect(page.locator("#cancel-order")).to_be_visible()
            kitchen.start("pantry")
            expect(page.locator("#status-text")).to_have_text(
                "Your pizza is in the oven", timeout=60_000
            )
            expect(page.locator("#cancel-order")).to_be_hidden()
        finally:
            browser.close()
