"""Back-pressure on the real broker: with two cooks per service, a burst waits its turn.

Nothing is lost, no kitchen service works on more than two orders at once, and each pauses
its partitions while its cooks are busy instead of reading the whole burst into memory.
"""

from __future__ import annotations

import secrets
from collections import defaultdict

from pizzashop.bench.load import OrderPlacer, bench_orders
from pizzashop.config import Settings
from pizzashop.contract import Topic
from pizzashop.runtime import KitchenWork, ServiceLoop
from pizzashop.services import SERVICE_NAMES
from tests.shop_harness import RunningShop, assert_each_delivered_exactly_once, wait_until_delivered

CAPACITY = 2
BURST = 100


class KitchenSpy:
    """Records how many orders each kitchen cooked at once, and whether its service paused."""

    def __init__(self) -> None:
        self.most_at_once: dict[str, int] = defaultdict(int)
        self.paused: set[str] = set()

    def watch(self, loop: ServiceLoop) -> None:
        work = loop.work
        if not isinstance(work, KitchenWork):
            return  # the status service has no kitchen
        name, kitchen = loop.name, work.kitchen
        start, after_turn = kitchen.start, work.after_turn

        def counting_start(*args: object, **kwargs: object) -> None:
            start(*args, **kwargs)  # type: ignore[arg-type]  # the spy passes them on unchanged
            self.most_at_once[name] = max(self.most_at_once[name], kitchen.cooking)

        def noting_pause(now: float) -> None:
            after_turn(now)
            if work.paused:
                self.paused.add(name)

        kitchen.start = counting_start  # type: ignore[method-assign]  # a spy on a public method
        work.after_turn = noting_pause  # type: ignore[method-assign]  # a spy on a public method


def test_a_burst_bigger_than_the_kitchen_waits_its_turn_and_nothing_is_lost(
    shop_settings: Settings,
) -> None:
    settings = shop_settings.replace(capacity=CAPACITY, time_scale=0.002)  # 4 to 38 ms a step
    shop, spy = RunningShop(settings), KitchenSpy()
    try:
        for name in SERVICE_NAMES:
            spy.watch(shop.start(name))  # before any order exists, so nothing is missed
        placer = OrderPlacer(settings, str(Topic.ORDERED))  # one producer: a real burst
        orders = bench_orders(f"back-pressure-{secrets.token_hex(3)}", BURST)
        for order_id, order in orders:
            placer.place(order_id, order)
        assert placer.close() == 0 and not placer.refused, placer.refused
        order_ids = [order_id for order_id, _ in orders]

        wait_until_delivered(shop.read_model(), order_ids, timeout=120)

        assert_each_delivered_exactly_once(settings, shop.read_model(), order_ids)
        kitchens = {"assemble", "pantry", "bake", "delivery"}
        assert set(spy.most_at_once) == kitchens
        assert all(n <= CAPACITY for n in spy.most_at_once.values()), dict(spy.most_at_once)
        assert spy.paused >= {"assemble", "bake"}, (
            f"only {spy.paused} paused for a burst of {BURST}"
        )
    finally:
        shop.stop_all()
