"""An order's story on the real broker: every record of it, in every topic, where a direct read
of the topics finds them, from `story.read_story` and from `pizzashop trace`."""

from __future__ import annotations

import json

from click.testing import CliRunner
from confluent_kafka import Producer

from pizzashop import contract
from pizzashop.cli import main
from pizzashop.config import Settings, as_environment, kafka_client_config
from pizzashop.contract import Topic
from pizzashop.kafka.topics import PIPELINE_TOPIC_NAMES, read_to_end
from pizzashop.operator.story import ORDERING, StoryRecord, read_story
from pizzashop.readmodel import OrderView
from tests.shop_harness import RunningShop, an_order, place, wait_for, wait_until_delivered

DELIVERY_CHANGELOG = contract.state_topic("delivery")
ASSEMBLE_CHANGELOG = contract.state_topic("assemble")  # waiting for the pantry, then done
# Where a delivered order, never cancelled, has records.
DELIVERED_ORDER_TOPICS = {*PIPELINE_TOPIC_NAMES, DELIVERY_CHANGELOG, ASSEMBLE_CHANGELOG} - {
    str(Topic.CANCEL)
}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
Place = tuple[str, int, int]  # topic, partition, offset


def read_directly(settings: Settings, order_id: str, partition: int) -> set[Place]:
    """Where the order's records are, read from the start of its partition of each topic."""
    found = set()
    for topic in (*PIPELINE_TOPIC_NAMES, DELIVERY_CHANGELOG, ASSEMBLE_CHANGELOG):
        for message in read_to_end(settings, topic, {partition}, timeout=60):
            if message.key() == order_id.encode():
                found.add((topic, partition, int(message.offset() or 0)))
    return found


def places(records: list[StoryRecord]) -> set[Place]:
    return {(r.topic, r.partition, r.offset) for r in records}


def delivered_orders(shop: RunningShop, count: int) -> list[OrderView]:
    order_ids = [place(shop.settings, an_order(name=f"Storyteller {i}")) for i in range(count)]
    return wait_until_delivered(shop.read_model(), order_ids, timeout=60)


def test_the_story_of_a_delivered_order_is_every_record_of_it_on_its_partition(
    shop: RunningShop,
) -> None:
    for view in delivered_orders(shop, 3):
        assert view.partition is not None, "the read model knows where the order lives"
        records = read_story(shop.settings, view)

        assert places(records) == read_directly(shop.settings, view.order_id, view.partition)
        assert {r.topic for r in records} == DELIVERED_ORDER_TOPICS
        assert {r.partition for r in records} == {view.partition}, "one partition number"
        times = [r.timestamp for r in records]
        assert times == sorted(times), f"not in time order: {records}"
        assert records[0].topic == Topic.ORDERED and records[0].since_previous_ms is None
        assert all(r.since_previous_ms is not None for r in records[1:])
        writers = {(r.topic, r.service) for r in records}
        assert writers == {
            (Topic.ORDERED, ORDERING),
            (Topic.ASSEMBLED, "assemble"),
            (Topic.BAKED, "bake"),
            (Topic.STATUS, "assemble"),
            (Topic.STATUS, "bake"),
            (Topic.STATUS, "delivery"),
            (Topic.RESERVED, "pantry"),
            (DELIVERY_CHANGELOG, "delivery"),
            (ASSEMBLE_CHANGELOG, "assemble"),
        }, records


def test_pizzashop_trace_prints_the_story_as_text_and_as_json(shop: RunningShop) -> None:
    (view,) = delivered_orders(shop, 1)
    environment = as_environment(shop.settings)
    runner = CliRunner()

    text = runner.invoke(main, ["trace", view.order_id], env=environment)
    as_json = runner.invoke(main, ["trace", view.order_id, "--json"], env=environment)
    unknown = runner.invoke(main, ["trace", "no-such-order"], env=environment)

    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0].startswith(f"Order {view.order_id}: ")
    for topic in DELIVERED_ORDER_TOPICS:
        assert any(f"{topic}[{view.partition}]@" in line for line in lines), (topic, lines)
    assert as_json.exit_code == 0, as_json.output
    story = json.loads(as_json.output)
    assert story["order_id"] == view.order_id
    expected = read_directly(shop.settings, view.order_id, view.partition or 0)
    assert {(r["topic"], r["partition"], r["offset"]) for r in story["records"]} == expected
    assert unknown.exit_code == 1 and len(unknown.output.strip().splitlines()) == 1


def test_a_bad_event_of_an_order_shows_in_its_story_with_its_dead_letter(shop: RunningShop) -> None:
    (view,) = delivered_orders(shop, 1)
    producer = Producer(kafka_client_config(shop.settings))
    producer.produce(
        str(Topic.ASSEMBLED),
        key=view.order_id.encode(),
        value=b'{"baking_time": "forever"}',
        partition=view.partition or 0,
        headers=[("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01")],
    )
    assert producer.flush(10) == 0, "the broker did not acknowledge the bad event"

    def story_with_dead_letter() -> list[StoryRecord] | None:
        records = read_story(shop.settings, view)
        return records if any(r.topic == Topic.DEAD_LETTER for r in records) else None

    records = wait_for(story_with_dead_letter, timeout=30, what="the dead letter in the story")
    (parked,) = [r for r in records if r.topic == Topic.DEAD_LETTER]
    assert parked.service == "bake", "the dead letter names the service that parked it"
    bad = [r for r in records if r.topic == Topic.ASSEMBLED and "forever" in (r.value or "")]
    assert len(bad) == 1 and bad[0].trace_id == TRACE_ID, "the trace id of its traceparent"
    assert records.index(bad[0]) < records.index(parked), "parked after it was written"
