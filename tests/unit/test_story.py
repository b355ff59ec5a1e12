"""An order's story without a broker: trace ids, who wrote what, where to look, how it reads."""

from __future__ import annotations

import pytest

from pizzashop import contract
from pizzashop.cli.views import story_report
from pizzashop.contract import Status, Topic
from pizzashop.observe.tracing import trace_id_from
from pizzashop.operator.story import (
    AFTER_LAST_MOVE_MS,
    BEFORE_PLACED_MS,
    ORDERING,
    StoryRecord,
    _shown,
    _writer,
    window_of,
    with_time_between,
    writer_of,
)
from pizzashop.readmodel import OrderView, StatusEntry

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_the_trace_id_is_read_from_a_w3c_traceparent() -> None:
    assert trace_id_from(TRACEPARENT) == TRACE_ID
    assert trace_id_from(TRACEPARENT.encode()) == TRACE_ID, "Kafka headers are bytes"
    assert trace_id_from(f"01-{TRACE_ID}-00f067aa0ba902b7-01-more") == TRACE_ID, (
        "a later version may add fields after the flags"
    )


@pytest.mark.parametrize(
    "traceparent",
    [
        None,
        "",
        "not a traceparent",
        TRACEPARENT.upper(),  # hex is lower case
        f"00-{TRACE_ID[:-1]}-00f067aa0ba902b7-01",  # a trace id one digit short
        f"00-{TRACE_ID}-00f067aa0ba902b-01",  # a span id one digit short
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",  # version 00 has four fields
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # version ff is invalid
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # an all-zero trace id is invalid
        f"00-{TRACE_ID}-{'0' * 16}-01",  # so is an all-zero span id
        b"\xff\xfe",
    ],
)
def test_anything_else_has_no_trace_id(traceparent: str | bytes | None) -> None:
    assert trace_id_from(traceparent) is None


@pytest.mark.parametrize(
    "topic, status, writer",
    [
        (Topic.ORDERED, None, ORDERING),
        (Topic.STATUS, 100, ORDERING),
        (Topic.ASSEMBLED, None, "assemble"),
        (Topic.STATUS, 200, "assemble"),
        (Topic.STATUS, 500, "assemble"),
        (Topic.BAKED, None, "bake"),
        (Topic.STATUS, 300, "bake"),
        (Topic.STATUS, 400, "delivery"),
        (Topic.STATUS, int(Status.STUCK), "status"),
        (contract.state_topic("delivery"), None, "delivery"),
        (Topic.STATUS, 999, ""),
        (Topic.STATUS, None, ""),
        ("someone-elses-topic", None, ""),
    ],
)
def test_the_contract_says_who_writes_each_record(
    topic: str, status: int | None, writer: str
) -> None:
    assert writer_of(topic, status) == writer


def an_order_view(status: Status, *times: int) -> OrderView:
    steps = zip(Status, times, strict=False)  # the first steps, as many as there are times
    history = tuple(StatusEntry(i, s, t) for i, (s, t) in enumerate(steps, 1))
    return OrderView(
        order_id="o-1",
        customer_id="c-1",
        order=None,
        placed_at=times[0],
        status=status,
        history=history,
        updated_at=times[-1],
        partition=3,
    )


def test_a_delivered_order_is_looked_for_around_its_known_times_on_its_partition() -> None:
    window = window_of(an_order_view(Status.DELIVERED, 10_000, 12_000, 15_000, 20_000))
    assert window.partition == 3
    assert window.since_ms == 10_000 - BEFORE_PLACED_MS
    assert window.until_ms == 20_000 + AFTER_LAST_MOVE_MS


def test_an_order_on_its_way_is_read_to_the_end_of_its_partitions() -> None:
    window = window_of(an_order_view(Status.IN_OVEN, 10_000, 12_000))
    assert window.until_ms is None, "it may move again at any time"


def a_record(
    topic: str,
    timestamp: int,
    offset: int = 7,
    service: str = "bake",
    value: str | None = "",
    trace_id: str | None = None,
) -> StoryRecord:
    return StoryRecord(str(topic), 3, offset, timestamp, service, value, trace_id)


def test_each_record_says_how_long_after_the_one_before_it_came() -> None:
    records = with_time_between(
        [
            a_record(Topic.ORDERED, 1_000),
            a_record(Topic.STATUS, 2_203),
            a_record(Topic.BAKED, 2_203),
        ]
    )
    assert [r.since_previous for r in records] == ["", "+1.203s", "+0.000s"]
    assert records[1].as_dict()["since_previous_ms"] == 1_203
    assert "value" not in records[1].as_dict(with_value=False)


def test_the_terminal_shows_one_line_per_record_with_its_place_writer_and_trace() -> None:
    records = with_time_between(
        [
            a_record(Topic.ORDERED, 1_000, offset=15, service="ordering", trace_id=TRACE_ID),
            a_record(Topic.BAKED, 2_500, offset=9, value=""),
            a_record(contract.state_topic("delivery"), 2_600, service="delivery", value=None),
        ]
    )
    header, ordered, baked, forgotten = story_report("o-1", records).splitlines()
    assert header == "Order o-1: 3 records"
    assert "pizza-ordered[3]@15" in ordered and "ordering" in ordered and TRACE_ID in ordered
    assert "+1.500s" in baked and "(empty)" in baked and " - " in baked, "no trace: a dash"
    assert "(no value)" in forgotten, "a tombstone"


def test_a_framed_status_names_its_writer_and_shows_its_json_with_its_schema() -> None:
    framed = b"\x00\x00\x00\x00\x03" + b'{"status": 300, "timestamp": 5}'
    assert _writer(str(Topic.STATUS), framed, []) == "bake"
    assert _shown(framed) == '(schema 3) {"status":300,"timestamp":5}'
    assert _shown(b'{"status": 300}') == '{"status":300}'
