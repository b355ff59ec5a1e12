"""The whole pizza pipeline on the real broker: ordered, assembled, baked, delivered, read."""

from __future__ import annotations

import secrets
import time

from pizzashop.config import Settings
from pizzashop.contract import Status, Topic
from pizzashop.services import SERVICE_NAMES
from tests.shop_harness import (
    PROGRESS,
    RunningShop,
    an_order,
    assert_each_delivered_exactly_once,
    place,
    produce_raw,
    wait_for,
    wait_until_delivered,
)


def test_orders_reach_delivered_with_the_full_history(shop: RunningShop) -> None:
    started = int(time.time() * 1000)
    order_ids = [place(shop.settings, an_order(name=f"Customer {i}")) for i in range(10)]

    views = wait_until_delivered(shop.read_model(), order_ids, timeout=60)

    finished = int(time.time() * 1000)
    for view in views:
        assert [entry.status for entry in view.history] == PROGRESS, view
        times = [entry.timestamp for entry in view.history]
        assert times == sorted(times), f"history of {view.order_id} goes back in time: {times}"
        assert started - 1000 <= times[0] and times[-1] <= finished + 1000, times
        assert view.order is not None and view.order.name.startswith("Customer")


def test_an_order_in_exactly_the_seeds_json_is_delivered(shop: RunningShop) -> None:
    order_id = secrets.token_hex(3)[:5]  # a short id like the seed's '3c91b'
    seed_value = (
        '{"status": 100, "timestamp": 1676235639159, "order": {"extra_toppings": ["Mushroom"], '
        '"customer_id": "d94a6c43d9f487c1bef659f05c002213", "name": "Italo", "sauce": "Tomato", '
        '"cheese": "Mozzarella", "main_topping": "Pepperoni"}}'
    )
    produce_raw(shop.settings, str(Topic.ORDERED), order_id.encode(), seed_value.encode())

    (view,) = wait_until_delivered(shop.read_model(), [order_id], timeout=60)

    assert [entry.status for entry in view.history] == PROGRESS
    assert view.order is not None and view.order.extra_toppings == ["Mushroom"]
    assert view.placed_at == 1676235639159


def test_an_order_off_the_menu_gets_an_error_status_not_a_pizza(shop: RunningShop) -> None:
    bad = an_order().model_copy(update={"sauce": "Ketchup"})
    order_id = place(shop.settings, bad)

    view = wait_for(
        lambda: (
            (v := shop.read_model().orders.get_order(order_id))
            and v.status is Status.INVALID_ORDER
            and v
        ),
        timeout=60,
        what="the invalid order to get status 500",
    )
    assert Status.IN_OVEN not in [entry.status for entry in view.history]


def test_two_instances_of_each_service_share_the_work_and_each_order_completes_once(
    shop: RunningShop,
) -> None:
    first = {r.name: r for r in shop.runners}
    second = {name: shop.start(name) for name in ("assemble", "bake", "delivery")}
    for name, runner in second.items():
        wait_for(
            lambda: runner.assigned and first[name].assigned,
            timeout=60,
            what=f"both {name} instances to own partitions",
        )
        mine, theirs = runner.assigned, first[name].assigned
        assert mine and theirs and not (mine & theirs), f"{name}: {mine} and {theirs} overlap"

    order_ids = [place(shop.settings, an_order(name=f"Twin {i}")) for i in range(30)]
    wait_until_delivered(shop.read_model(), order_ids, timeout=90)

    assert_each_delivered_exactly_once(shop.settings, shop.read_model(), order_ids)


def test_at_least_once_mode_delivers_every_order_and_the_view_shows_each_status_once(
    shop_settings: Settings,
) -> None:
    shop = RunningShop(shop_settings.replace(processing_guarantee="at_least_once"))
    for name in SERVICE_NAMES:
        shop.start(name)
    try:
        order_ids = [place(shop.settings, an_order(name=f"Loose {i}")) for i in range(20)]
        views = wait_until_delivered(shop.read_model(), order_ids, timeout=60)
        assert all([e.status for e in v.history] == PROGRESS for v in views)
    finally:
        shop.stop_all()
