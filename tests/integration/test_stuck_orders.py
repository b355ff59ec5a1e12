"""Orders that stop moving are marked stuck, and can be sent through the kitchen again."""

from __future__ import annotations

from click.testing import CliRunner

from pizzashop.cli import main
from pizzashop.config import Settings, as_environment
from pizzashop.contract import Status
from tests.shop_harness import RunningShop, an_order, place, wait_for, wait_until_delivered


def test_a_stalled_order_is_marked_stuck_and_a_retry_gets_it_delivered(
    shop_settings: Settings,
) -> None:
    settings = shop_settings.replace(stuck_after=2.0)
    shop = RunningShop(settings)
    for name in ("status", "pantry", "bake", "delivery"):  # no one assembles: they stall at 100
        shop.start(name)
    try:
        order_id = place(settings, an_order(name="Patient"))
        read_model = shop.read_model()
        wait_for(
            lambda: (v := read_model.orders.get_order(order_id)) and v.status is Status.STUCK,
            timeout=30,
            what="the watchdog to mark the order stuck",
        )

        result = CliRunner().invoke(main, ["retry", order_id], env=as_environment(settings))
        assert result.exit_code == 0, result.output
        shop.start("assemble")

        (view,) = wait_until_delivered(read_model, [order_id], timeout=60)
        statuses = [entry.status for entry in view.history]
        assert statuses.count(Status.STUCK) == 1 and Status.DELIVERED in statuses, statuses
        assert len(statuses) == len(set(statuses)), f"a status shows twice: {statuses}"
    finally:
        shop.stop_all()


def test_a_delivered_order_is_not_retried(shop: RunningShop) -> None:
    order_id = place(shop.settings, an_order())
    wait_until_delivered(shop.read_model(), [order_id], timeout=60)
    result = CliRunner().invoke(main, ["retry", order_id], env=as_environment(shop.settings))
    assert result.exit_code != 0 and "final" in result.output
