"""One order, one pizza: a double submit, a retry after a time-out, a retry after the web app
restarts, the same order produced twice and `pizzashop retry`, on the real broker.

"One pizza" is read from the log: one record on pizza-assembled and on pizza-baked, each
status once on pizza-status, and one order in the read model with a clean history.
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx2 as httpx
from click.testing import CliRunner
from fastapi.testclient import TestClient

from pizzashop.cli import main
from pizzashop.commands.ordering import OrderTaker
from pizzashop.config import Settings, as_environment
from pizzashop.contract import OrderPlaced, Status, Topic, now_ms
from pizzashop.kafka.topics import read_to_end
from pizzashop.readmodel.store import open_readmodel
from tests.integration.test_web_kafka import ORDER, signed_in, web_process
from tests.shop_harness import (
    RunningShop,
    an_order,
    assert_each_delivered_exactly_once,
    wait_for,
    wait_until_delivered,
)


def same_customer(first: TestClient, second: TestClient) -> TestClient:
    """The session cookie is signed with the shop's secret: every web process accepts it."""
    second.cookies = httpx.Cookies(first.cookies)
    return second


def records_of(settings: Settings, topic: Topic, order_id: str) -> int:
    return sum(1 for m in read_to_end(settings, str(topic)) if m.key() == order_id.encode())


def assert_one_pizza(settings: Settings, order_id: str, assembled: int = 1) -> None:
    """Delivered once, each status once; assembled once (or sent to the oven `assembled` times
    by hand) and baked once."""
    wait_until_delivered(open_readmodel(settings.readmodel_url), [order_id], timeout=60)
    assert_each_delivered_exactly_once(settings, open_readmodel(settings.readmodel_url), [order_id])
    made = Counter(
        {topic: records_of(settings, topic, order_id) for topic in (Topic.ASSEMBLED, Topic.BAKED)}
    )
    assert made == Counter({Topic.ASSEMBLED: assembled, Topic.BAKED: 1}), (
        f"{order_id} was made {dict(made)}"
    )


def test_a_double_submit_to_two_web_processes_is_one_order_and_one_pizza(shop: RunningShop) -> None:
    first = signed_in(web_process(shop.settings))
    second = same_customer(first, web_process(shop.settings))
    answers: list[httpx.Response] = []

    def submit(client: TestClient) -> None:
        answers.append(
            client.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "double"})
        )

    submits = [threading.Thread(target=submit, args=(c,)) for c in (first, second)]
    for thread in submits:
        thread.start()
    for thread in submits:
        thread.join(30)

    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    order_ids = {a.json()["order_id"] for a in answers}
    assert len(order_ids) == 1, f"one key, two orders: {order_ids}"
    assert_one_pizza(shop.settings, order_ids.pop())


def test_a_retry_after_a_time_out_is_one_order_and_one_pizza(shop: RunningShop) -> None:
    impatient = signed_in(web_process(shop.settings, wait=0.0))  # gives up before any answer
    timed_out = impatient.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "slow"})
    assert timed_out.status_code == 504, timed_out.text

    patient = same_customer(impatient, web_process(shop.settings))
    retried = patient.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "slow"})

    assert retried.status_code == 201, retried.text
    order_id = retried.json()["order_id"]
    wait_for(
        lambda: records_of(shop.settings, Topic.ORDERED, order_id) >= 1,
        timeout=30,
        what="the timed-out order to reach the log all the same",
    )
    assert_one_pizza(shop.settings, order_id)


def test_a_retry_after_the_web_app_restarts_is_the_same_order(shop: RunningShop) -> None:
    before = signed_in(web_process(shop.settings))
    placed = before.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "restart"})
    before.close()

    after = same_customer(before, web_process(shop.settings))
    retried = after.post("/api/orders", json=ORDER, headers={"Idempotency-Key": "restart"})

    assert placed.status_code == retried.status_code == 201, retried.text
    assert placed.json()["order_id"] == retried.json()["order_id"]
    assert_one_pizza(shop.settings, placed.json()["order_id"])


def test_the_same_order_produced_again_after_the_kitchen_restarts_is_not_made_again(
    shop: RunningShop,
) -> None:
    order, order_id = an_order(), "twice-" + an_order().customer_id
    OrderTaker(shop.settings).place(order, order_id)
    wait_until_delivered(shop.read_model(), [order_id], timeout=60)

    kitchen = [r for r in shop.runners if r.name != "status"]
    for runner in kitchen:
        shop.stop(runner)
    for runner in kitchen:
        shop.start(runner.name)  # its memory of the order comes from its changelog
    OrderTaker(shop.settings).place(order, order_id)
    wait_for(
        lambda: records_of(shop.settings, Topic.ORDERED, order_id) == 2,
        timeout=30,
        what="the second copy of the order in the log",
    )

    # An order behind it on its partition: once that one is delivered, the kitchen is past it.
    view = shop.read_model().orders.get_order(order_id)
    assert view is not None and view.partition is not None
    sentinel = OrderPlaced("after-" + order_id, an_order(), now_ms())
    OrderTaker(shop.settings).send(sentinel, view.partition)
    wait_until_delivered(shop.read_model(), [sentinel.order_id], timeout=60)
    assert_one_pizza(shop.settings, order_id)


def test_retry_resumes_an_order_at_its_missing_step_and_does_not_make_it_twice(
    shop_settings: Settings,
) -> None:
    shop = RunningShop(shop_settings)
    for name in ("assemble", "pantry", "delivery", "status"):  # no oven yet: they stop at 200
        shop.start(name)
    try:
        order_id = (
            OrderTaker(shop_settings)
            .place(an_order(), "resume-" + an_order().customer_id)[0]
            .order_id
        )
        wait_for(
            lambda: (
                (v := shop.read_model().orders.get_order(order_id)) and v.status is Status.IN_OVEN
            ),
            timeout=60,
            what="the order to reach the oven",
        )

        for _ in range(2):  # an impatient operator
            result = CliRunner().invoke(
                main, ["retry", order_id], env=as_environment(shop_settings)
            )
            assert result.exit_code == 0 and "PizzaAssembled" in result.output, result.output
        shop.start("bake")

        assert_one_pizza(
            shop_settings, order_id, assembled=1 + 2
        )  # assemble's, then the two retries
    finally:
        shop.stop_all()
