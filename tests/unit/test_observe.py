"""Seeing inside without a broker: statistics read, readiness decided, metrics counted,
log lines written and traces linked, from the shop's own parts."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged
from pizzashop.observe import tracing
from pizzashop.observe.health import GroupView, service_readiness
from pizzashop.observe.logs import JsonLines, seed_lines
from pizzashop.observe.metrics import ServiceMetrics, StageClock
from pizzashop.observe.server import ObserveServer
from pizzashop.runtime.kitchen import Ticket


def stats(state: str = "up", join_state: str = "steady", lag_end: int = 50) -> str:
    """The parts of a librdkafka statistics report the shop reads."""
    partition = {"fetch_state": "active", "hi_offset": lag_end + 5, "ls_offset": lag_end,
                 "app_offset": 40}  # fmt: skip
    return json.dumps(
        {
            "cgrp": {"state": state, "join_state": join_state, "assignment_size": 2},
            "topics": {
                "pizza-ordered": {
                    "partitions": {
                        "0": partition,
                        "1": {**partition, "app_offset": -1001},  # nothing read yet
                        "2": {**partition, "fetch_state": "none"},  # not ours
                        "-1": partition,  # librdkafka's internal "unassigned" partition
                    }
                }
            },
        }
    )


def test_statistics_give_the_group_state_and_the_lag_of_the_partitions_held() -> None:
    view = GroupView.from_stats(stats(), read_committed=True)
    assert (view.coordinator_up, view.joined, view.partitions) == (True, True, 2)
    assert view.lag == {("pizza-ordered", 0): 10, ("pizza-ordered", 1): 50}
    uncommitted = GroupView.from_stats(stats(), read_committed=False)
    assert uncommitted.lag[("pizza-ordered", 0)] == 15  # up to the high watermark


def test_a_service_is_ready_only_as_a_steady_member_heard_from_lately() -> None:
    steady = GroupView.from_stats(stats(), read_committed=True)
    assert service_readiness("bake", steady, {}, 3, now=steady.at).ready
    answer = service_readiness("bake", steady, {}, 3, now=steady.at, partitions_restored=1)
    assert answer.as_dict() == {"ready": True, "missing": [], "service": "bake", "partitions": 2,
                                "lag": 60, "orders_in_the_works": 3, "partitions_restored": 1}  # fmt: skip
    not_ready = {
        "no client yet": service_readiness("bake", None, {}, 0),
        "stale": service_readiness("bake", steady, {}, 0, now=steady.at + 60),
        "no coordinator": service_readiness(
            "bake", GroupView.from_stats(stats(state="wait-coord"), True), {}, 0
        ),
        "joining": service_readiness(
            "bake", GroupView.from_stats(stats(join_state="wait-join"), True), {}, 0
        ),
        "failing commit": service_readiness(
            "bake", steady, {"commit": "could not commit"}, 0, now=steady.at
        ),
    }
    for case, readiness in not_ready.items():
        assert not readiness.ready and readiness.missing, case
    harmless = service_readiness("bake", steady, {"client": "a disconnect"}, 0, now=steady.at)
    assert harmless.ready


def test_the_observe_server_answers_health_readiness_and_metrics() -> None:
    readiness = service_readiness("bake", None, {}, 0)
    server = ObserveServer("127.0.0.1", 0, lambda: readiness).start()
    try:
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        answer = httpx.get(f"{server.url}/readyz")
        assert answer.status_code == 503
        assert answer.json()["missing"] == ["not connected to Kafka yet"]
        metrics = httpx.get(f"{server.url}/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# HELP pizzashop_handler_duration_seconds " in metrics.text
        assert httpx.get(f"{server.url}/other").status_code == 404
    finally:
        server.close()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_service_metrics_count_per_topic_once_a_turn_and_keep_lag_for_the_partitions_held() -> None:
    metrics = ServiceMetrics("unit-a")
    metrics.consumed(["pizza-ordered", "pizza-ordered", "pizza-status"])
    metrics.handled(0.002)
    metrics.handled(0.004)
    assert sample("pizzashop_events_consumed_total", service="unit-a", topic="pizza-ordered") == 0
    metrics.flush()  # once a turn: per event, prometheus-client's locks would cost a handler's time
    assert sample("pizzashop_handler_duration_seconds_count", service="unit-a") == 1
    assert sample("pizzashop_handler_duration_seconds_sum", service="unit-a") == pytest.approx(
        0.003
    )
    assert sample("pizzashop_events_consumed_total", service="unit-a", topic="pizza-ordered") == 2
    metrics.lag({("pizza-ordered", 0): 7, ("pizza-ordered", 1): 3})
    metrics.lag({("pizza-ordered", 1): 4})  # partition 0 was handed over
    lag = "pizzashop_consumer_lag_records"
    assert REGISTRY.get_sample_value(lag, {"service": "unit-a", "topic": "pizza-ordered",
                                           "partition": "0"}) is None  # fmt: skip
    assert sample(lag, service="unit-a", topic="pizza-ordered", partition="1") == 4
    switched_off = ServiceMetrics("unit-b", enabled=False)
    switched_off.consumed(["pizza-ordered"])
    switched_off.handled(0.1)
    switched_off.flush()
    assert sample("pizzashop_events_consumed_total", service="unit-b", topic="pizza-ordered") == 0


def test_the_stage_clock_times_each_stage_from_the_events_it_saw() -> None:
    clock = StageClock()
    before = {s: sample("pizzashop_stage_duration_seconds_sum", stage=s)
              for s in ("assemble", "bake", "delivery")}  # fmt: skip
    order = Order(customer_id="c", name="Italo", sauce="Tomato", cheese="Mozzarella",
                  main_topping="Pepperoni")  # fmt: skip
    clock.saw(OrderPlaced("o-1", order, 10_000))
    clock.saw(StatusChanged("o-1", Status.IN_OVEN, 12_000))
    clock.saw(StatusChanged("o-1", Status.OUT_FOR_DELIVERY, 17_000))
    clock.saw(StatusChanged("o-1", Status.DELIVERED, 27_500))
    clock.saw(StatusChanged("o-2", Status.DELIVERED, 30_000))  # its earlier steps unseen
    took = {s: sample("pizzashop_stage_duration_seconds_sum", stage=s) - before[s] for s in before}
    assert took == {"assemble": 2.0, "bake": 5.0, "delivery": 10.5}


def log_line(formatter: logging.Formatter, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("unit.observe")
    logger.handlers[:], logger.propagate = [handler], False
    logger.warning("Oven %s is hot", "2", extra=extra)
    return stream.getvalue()


def test_json_log_lines_carry_the_service_order_and_trace() -> None:
    line = json.loads(log_line(JsonLines("bake"), order_id="o-1", trace_id="ab" * 16))
    assert line["level"] == "WARNING" and line["service"] == "bake"
    assert (line["order_id"], line["trace_id"]) == ("o-1", "ab" * 16)
    assert line["message"] == "Oven 2 is hot" and line["time"].endswith("Z")
    assert json.loads(log_line(JsonLines("bake")))["order_id"] is None
    assert log_line(seed_lines("bake")).startswith("(msvc_bake) WARNING ")


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory (as OTLP export would, without the network)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def ticket(offset: int, headers: list[tuple[str, bytes | None]] | None) -> Ticket:
    return Ticket("pizza-ordered", 3, offset, "o-1", None, headers=headers)


def test_a_handled_event_is_the_child_of_the_record_and_the_parent_of_its_outputs(
    spans: InMemorySpanExporter,
) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    incoming = ticket(41, [("traceparent", f"00-{trace_id}-{parent}-01".encode())])
    kitchen = tracing.TicketSpans("assemble")
    kitchen.start(incoming)
    outgoing = kitchen.headers(incoming)
    assert outgoing is not None and tracing.trace_id_in(outgoing) == trace_id
    kitchen.end(incoming)
    with kitchen.commit("commit"):
        pass
    handled, commit = spans.get_finished_spans()
    assert format(handled.context.trace_id, "032x") == trace_id
    assert handled.parent is not None and format(handled.parent.span_id, "016x") == parent
    assert handled.attributes is not None and handled.attributes["messaging.kafka.offset"] == 41
    assert [link.context.span_id for link in commit.links] == [handled.context.span_id]


def test_events_handed_back_end_their_spans_and_others_start_new_traces(
    spans: InMemorySpanExporter,
) -> None:
    kitchen = tracing.TicketSpans("bake")
    untraced = ticket(1, None)
    kitchen.start(untraced)
    kitchen.drop([("pizza-ordered", 3)])
    (dropped,) = spans.get_finished_spans()
    assert dropped.parent is None  # no traceparent: a trace of its own
    assert dropped.attributes is not None and dropped.attributes["pizzashop.handed_back"] is True
    assert kitchen.headers(untraced) is None
    assert tracing.trace_id_in([("traceparent", b"garbage")]) is None
