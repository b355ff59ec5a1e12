"""The pantry on the real broker: every ingredient counted once, never sold twice.

The pantry's state lives in Kafka and outlives a test, so these tests share a broker of their
own, started with a known starting stock, and each test orders its own extra topping.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from pizzashop.bench.stocking import recorded_levels
from pizzashop.commands.desk import ReadModelOrders, desk_for_one_command
from pizzashop.config import Settings, shop_secret
from pizzashop.contract import Status, Topic
from pizzashop.kafka.topics import read_to_end
from pizzashop.readmodel.store import ReadModel, open_readmodel
from pizzashop.services import SERVICE_NAMES
from tests.conftest import PANTRY_CLUSTER_STOCK
from tests.ports import free_port
from tests.shop_harness import (
    RunningShop,
    ShopProcesses,
    an_order,
    every_service,
    order_taker,
    place,
    wait_for,
)

STOCK = PANTRY_CLUSTER_STOCK
THE_USUAL = ("Tomato", "Mozzarella", "Pepperoni")  # an_order's, of which there are thousands


@pytest.fixture
def shop(pantry_cluster: Settings, tmp_path: Path) -> Iterator[RunningShop]:
    with every_service(pantry_cluster.replace(state_dir=tmp_path / "state")) as running:
        yield running


@pytest.fixture
def read_model(shop: RunningShop) -> Iterator[ReadModel]:
    model = shop.read_model()
    yield model
    model.close()


def stock_left(settings: Settings) -> dict[str, int]:
    """Each ingredient's last level on pizza-stock (read committed)."""
    return recorded_levels(settings, timeout=60)


def pantry_answers(settings: Settings, order_ids: set[str]) -> dict[str, list[dict[str, object]]]:
    """What pizza-reserved says of each order: its answer, then how its reservation ended."""
    found: dict[str, list[dict[str, object]]] = {order_id: [] for order_id in order_ids}
    for message in read_to_end(settings, str(Topic.RESERVED), timeout=60):
        order_id = (message.key() or b"").decode()
        if order_id in found:
            found[order_id].append(json.loads(message.value() or b""))
    return found


def final_statuses(read_model: ReadModel, order_ids: list[str], timeout: float) -> list[Status]:
    def all_final() -> list[Status] | None:
        views = [read_model.orders.get_order(order_id) for order_id in order_ids]
        if all(v is not None and v.status.is_final for v in views):
            return [v.status for v in views if v is not None]
        return None

    return wait_for(all_final, timeout, "every order to end")


@pytest.fixture
def two_web_processes(shop: RunningShop, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two `pizzashop web` processes on the shop's broker and read model, each on a free port."""
    shop_secret(shop.settings)  # made once here, as `pizzashop up` does, not by both at once
    processes = ShopProcesses(shop.settings, tmp_path)
    ports = (free_port(), free_port())
    for port in ports:
        processes.start("web", shop.settings.replace(web_host="127.0.0.1", web_port=port))
    webs = (f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
    try:
        for web in webs:
            wait_for(lambda: answers_ready(web), 60, f"the web process at {web} to be ready")
        yield webs
    except AssertionError as e:
        raise AssertionError(f"{e}\n{processes.log_tail()}") from None
    finally:
        processes.stop_all()


def answers_ready(web: str) -> bool:
    try:
        return httpx.get(f"{web}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


MUSHROOM_PIZZA = {
    "name": "Mushroom lover",
    "sauce": "Tomato",
    "cheese": "Mozzarella",
    "main_topping": "Pepperoni",
    "extra_toppings": ["Mushroom"],
}
CUSTOMERS = 50
TRY_FOR = 60.0  # seconds a customer keeps sending the same order while the answer is 503 or 504


def order_at_once(
    customer: httpx.Client, everyone_signed_in: threading.Barrier
) -> tuple[httpx.Client, httpx.Response]:
    """A customer signs in, waits for everyone else, then orders a mushroom pizza; sent again
    under the same key while the kitchen does not confirm it (it is one order, whatever)."""
    assert customer.post("/api/session", json={"name": "Mushroom lover"}).status_code == 201
    key = {"Idempotency-Key": secrets.token_urlsafe(16)}
    everyone_signed_in.wait()
    deadline = time.monotonic() + TRY_FOR
    while True:
        answer = customer.post("/api/orders", json=MUSHROOM_PIZZA, headers=key)
        if answer.status_code not in (503, 504) or time.monotonic() > deadline:
            return customer, answer
        time.sleep(float(answer.headers.get("Retry-After", "1")))


def seen_by(browser: httpx.Client, order_id: str) -> dict[str, Any]:
    """The order as its customer sees it through the web process `browser` talks to."""
    seen = browser.get(f"/api/orders/{order_id}")
    assert seen.status_code == 200, f"{browser.base_url} does not show {order_id}: {seen.text}"
    view: dict[str, Any] = seen.json()
    return view


def every_order_ended(placed: dict[str, tuple[httpx.Client, str]]) -> list[dict[str, Any]] | None:
    """Each order as its customer sees it where they ordered it, once every one is final."""
    seen = [seen_by(customer, order_id) for order_id, (customer, _) in placed.items()]
    return seen if all(Status(view["status"]).is_final for view in seen) else None


def seen_on_the_other(placed: dict[str, tuple[httpx.Client, str]]) -> list[dict[str, Any]]:
    """Each order as its customer sees it on the web process they did not order on."""
    seen = []
    for order_id, (customer, other) in placed.items():
        with httpx.Client(base_url=other, timeout=30, cookies=customer.cookies) as there:
            seen.append(seen_by(there, order_id))
    return seen


def test_the_last_ten_mushrooms_go_to_ten_of_fifty_customers_ordering_at_once_on_two_web_processes(
    shop: RunningShop, two_web_processes: tuple[str, str]
) -> None:
    """Half the customers order on each web process, and see their order on the other too.
    Each gets an order that ends delivered or sold out, or a 409 at the door once the door's
    levels say none is left: which of the two depends on how soon the read model hears."""
    webs = two_web_processes
    everyone_signed_in = threading.Barrier(CUSTOMERS, timeout=60)
    with ExitStack() as closing, ThreadPoolExecutor(max_workers=CUSTOMERS) as pool:
        customers = [
            closing.enter_context(httpx.Client(base_url=webs[n % 2], timeout=30))
            for n in range(CUSTOMERS)
        ]
        answers = list(pool.map(lambda c: order_at_once(c, everyone_signed_in), customers))
        # Each order, its customer, and the web process they did not order on.
        placed = {
            a.json()["order_id"]: (c, webs[(n + 1) % 2])
            for n, (c, a) in enumerate(answers)
            if a.status_code == 201
        }
        at_the_door = {c: a for c, a in answers if a.status_code == 409}
        assert len(placed) + len(at_the_door) == CUSTOMERS, [a.text for _, a in answers]
        assert {a.json()["detail"] for a in at_the_door.values()} <= {"sold out: Mushroom"}
        ended = wait_for(lambda: every_order_ended(placed), 120, "every order to end", 0.5)
        elsewhere = seen_on_the_other(placed)
        assert all(c.get("/api/orders").json() == [] for c in at_the_door), "a 409 placed it"
    assert [v["status"] for v in elsewhere] == [v["status"] for v in ended], "one read model"
    delivered = [view for view in elsewhere if view["status"] == Status.DELIVERED]
    sold_out = [view for view in elsewhere if view["status"] == Status.SOLD_OUT]
    assert len(delivered) == 10 and len(sold_out) + len(at_the_door) == 40, ended
    assert {(v["status_text"], v["sold_out"]) for v in sold_out} <= {
        ("Sold out: Mushroom", "Mushroom")
    }
    assert_the_pantry_used_ten(shop.settings, set(placed))


def assert_the_pantry_used_ten(settings: Settings, order_ids: set[str]) -> None:
    """Each order that came past the door answered once by the pantry: ten reserved, each
    reservation used by its pizza's assembly (on pizza-assembled; none released); the others
    sold out of Mushroom; and none left. Every order has ended by now."""
    answers = pantry_answers(settings, order_ids)
    reserved = {order_id for order_id, a in answers.items() if a and "sold_out" not in a[0]}
    assert len(reserved) == 10, answers
    assert all(len(answers[order_id]) == 1 for order_id in reserved), "none released"
    assert assembled(settings, order_ids) == reserved, "used, each by its assembly"
    refused = [a for a in answers.values() if a and "sold_out" in a[0]]
    assert len(refused) + len(reserved) == len(order_ids), answers
    assert all(len(a) == 1 and a[0]["sold_out"] == "Mushroom" for a in refused), answers
    assert stock_left(settings)["Mushroom"] == 0


def assembled(settings: Settings, order_ids: set[str]) -> set[str]:
    """Which of these orders pizza-assembled holds."""
    keys = {
        (message.key() or b"").decode()
        for message in read_to_end(settings, str(Topic.ASSEMBLED), timeout=60)
    }
    return keys & order_ids


def test_an_order_short_of_one_ingredient_reserves_none_of_them(
    shop: RunningShop, read_model: ReadModel
) -> None:
    settings = shop.settings
    before = stock_left(settings)
    order_id = place(settings, an_order("Short", ("Black olives",)))
    assert final_statuses(read_model, [order_id], timeout=60) == [Status.SOLD_OUT]
    (answer,) = pantry_answers(settings, {order_id})[order_id]
    assert answer["sold_out"] == "Black olives"
    after = stock_left(settings)
    for ingredient in THE_USUAL:
        assert after.get(ingredient) == before.get(ingredient), f"{ingredient} was taken"


def test_a_cancel_before_the_assembly_releases_and_one_after_it_returns_nothing(
    pantry_cluster: Settings, tmp_path: Path
) -> None:
    """Green pepper: one left. Assembly takes seconds here, so a cancel can land before it."""
    slow_settings = pantry_cluster.replace(state_dir=tmp_path / "state", time_scale=1.0)
    with every_service(slow_settings) as slow:
        read_model = slow.read_model()
        try:
            cancel_before_and_after_the_assembly(slow.settings, read_model)
        finally:
            read_model.close()


def cancel_before_and_after_the_assembly(settings: Settings, read_model: ReadModel) -> None:
    first = place(settings, an_order("Changed my mind", ("Green pepper",)))
    wait_for(lambda: stock_left(settings).get("Green pepper") == 0, 60, "the reservation")
    assert cancel(settings, read_model, first) == Status.CANCELLED
    wait_for(lambda: stock_left(settings).get("Green pepper") == 1, 60, "the release")
    second = place(settings, an_order("Keeps it", ("Green pepper",)))
    wait_for(lambda: Status.IN_OVEN in statuses_of(read_model, second), 60, "the assembly")
    assert cancel(settings, read_model, second) == Status.IN_OVEN, "too late: it goes on"
    assert stock_left(settings)["Green pepper"] == 0, "nothing returns after the assembly"
    answers = pantry_answers(settings, {first, second})
    assert [a.get("ended") for a in answers[first]] == [None, "released"]
    assert [a.get("ended") for a in answers[second]] == [None], "used by its assembly"
    assert assembled(settings, {first, second}) == {second}


def statuses_of(read_model: ReadModel, order_id: str) -> set[Status]:
    view = read_model.orders.get_order(order_id)
    return set() if view is None else {entry.status for entry in view.history}


def cancel(settings: Settings, read_model: ReadModel, order_id: str) -> Status:
    view = wait_for(lambda: read_model.orders.get_order(order_id), 60, "the order")
    desk = desk_for_one_command(settings, ReadModelOrders(read_model.orders.get_order), 60)
    return asyncio.run(desk.cancel(view)).view.status


def test_a_restock_lets_orders_through_again_and_counts_once(
    shop: RunningShop, read_model: ReadModel
) -> None:
    settings = shop.settings
    refused = place(settings, an_order("Too early", ("Fresh garlic",)))
    assert final_statuses(read_model, [refused], timeout=60) == [Status.SOLD_OUT]
    desk = desk_for_one_command(settings)
    restock = asyncio.run(desk.restock("Fresh garlic", 2))
    wait_for(lambda: stock_left(settings).get("Fresh garlic") == 2, 60, "the restock")
    order_taker(settings).send(restock, 0)  # the same restock delivered again counts once
    served = [place(settings, an_order(f"Garlic {i}", ("Fresh garlic",))) for i in range(3)]
    ended = final_statuses(read_model, served, timeout=60)
    assert sorted(ended) == [Status.DELIVERED, Status.DELIVERED, Status.SOLD_OUT], ended
    assert stock_left(settings)["Fresh garlic"] == 0


@pytest.mark.faults
def test_the_deciding_pantry_killed_mid_burst_and_another_taking_over_conserve_the_stock(
    pantry_cluster: Settings, tmp_path: Path
) -> None:
    """Onion: 40 for 60 orders. A second pantry joins mid-burst (a rebalance), then the first,
    which decided until then, is killed: the other goes on from the changelog. Exactly 40 get
    onions, each answered once and used by its assembly, none left."""
    processes = ShopProcesses(pantry_cluster.replace(state_dir=tmp_path / "state"), tmp_path)
    for name in SERVICE_NAMES:
        processes.start(name)
    read_model = open_readmodel(processes.settings.readmodel_url)
    try:
        settings = processes.settings
        order_ids = [place(settings, an_order(f"Onion {i}", ("Onion",))) for i in range(20)]
        wait_for(lambda: stock_left(settings).get("Onion", 40) < 40, 60, "the pantry deciding")
        processes.start("pantry")
        order_ids += [place(settings, an_order(f"Onion {i}", ("Onion",))) for i in range(20, 40)]
        processes.kill("pantry", oldest=True)
        order_ids += [place(settings, an_order(f"Onion {i}", ("Onion",))) for i in range(40, 60)]
        ended = final_statuses(read_model, order_ids, timeout=180)
        assert ended.count(Status.DELIVERED) == 40 and ended.count(Status.SOLD_OUT) == 20, ended
        answers = pantry_answers(settings, set(order_ids))
        assert all(len(a) == 1 for a in answers.values()), "each answered once, none released"
        reserved = {order_id for order_id, a in answers.items() if not a[0].get("sold_out")}
        assert assembled(settings, set(order_ids)) == reserved, "each used by its assembly"
        assert stock_left(settings)["Onion"] == 0
    except AssertionError as e:
        raise AssertionError(f"{e}\n{processes.log_tail()}") from None
    finally:
        read_model.close()
        processes.stop_all()
