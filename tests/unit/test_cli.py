"""The command line: clear errors, and the read model shown as text and JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pizzashop.cli import main
from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged
from pizzashop.readmodel.store import open_readmodel


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"PIZZASHOP_STATE_DIR": str(tmp_path), "PIZZASHOP_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


def order_command(*more: str, sauce: str = "Tomato") -> list[str]:
    """`pizzashop order` for Italo's pizza (a Gouda and pork one), with `more` options."""
    return ["order", "--name", "Italo", "--sauce", sauce, "--cheese", "Gouda", "--main-topping",
            "Pork", *more]  # fmt: skip


def with_one_order(tmp_path: Path) -> None:
    model = open_readmodel(f"sqlite:///{tmp_path / 'readmodel.sqlite3'}")
    order = Order(
        customer_id="c1",
        name="Italo",
        sauce="Pesto",
        cheese="Gouda",
        main_topping="Pork",
        extra_toppings=["Onion"],
    )
    model.writer.apply(
        [
            OrderPlaced("abc", order, 1_700_000_000_000),
            StatusChanged("abc", Status.IN_OVEN, 1_700_000_001_000),
        ],
        {},
    )
    model.close()


def test_orders_and_order_status_read_the_read_model(tmp_path: Path) -> None:
    with_one_order(tmp_path)
    runner = CliRunner()
    listing = runner.invoke(main, ["orders"], env=env_for(tmp_path))
    assert listing.exit_code == 0 and "abc" in listing.output and "in the oven" in listing.output
    report = runner.invoke(main, ["order-status", "abc"], env=env_for(tmp_path))
    assert "Pesto" in report.output and "100" in report.output and "200" in report.output
    as_json = json.loads(
        runner.invoke(main, ["order-status", "abc", "--json"], env=env_for(tmp_path)).output
    )
    assert [h["status"] for h in as_json["history"]] == [100, 200]


@pytest.mark.parametrize("order_id", ["-9abc", "-mQGdx0RBmlwpck9eghilA"])
@pytest.mark.parametrize("command", ["order-status", "trace", "retry", "cancel"])
def test_an_order_id_that_starts_with_a_dash_is_an_order_id_not_an_option(
    tmp_path: Path, command: str, order_id: str
) -> None:
    # URL-safe base64: one order id in 64 starts with "-"; the second holds an "h", as in -h.
    with_one_order(tmp_path)
    result = CliRunner().invoke(main, [command, order_id], env=env_for(tmp_path))
    assert "No such option" not in result.output, result.output
    assert "Usage:" not in result.output, result.output
    assert order_id in result.output, result.output


def test_an_unknown_order_is_a_clear_error(tmp_path: Path) -> None:
    with_one_order(tmp_path)
    result = CliRunner().invoke(main, ["order-status", "nope"], env=env_for(tmp_path))
    assert result.exit_code == 1 and "no order 'nope'" in result.output


def test_an_order_off_the_menu_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, order_command(sauce="Ketchup"), env=env_for(tmp_path))
    assert result.exit_code == 1 and "sauce" in result.output and "Ketchup" in result.output


def test_an_unreachable_broker_is_named_within_seconds_and_nothing_is_ordered(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(
        main,
        order_command("--idempotency-key", "k-1"),
        env={**env_for(tmp_path), "PIZZASHOP_LOG_LEVEL": "WARNING"},
    )
    assert time.monotonic() - started < 10, "it gives up within seconds"
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        "Error: order not placed: cannot reach the Kafka broker at 127.0.0.1:1 within 5s: "
        "is the shop running (make run), or is PIZZASHOP_BOOTSTRAP_SERVERS right?"
    ]


def test_an_idempotency_key_that_cannot_be_one_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, order_command("--idempotency-key", "a\nb"), env=env_for(tmp_path)
    )
    assert result.exit_code == 1 and "--idempotency-key" in result.output, result.output


def test_a_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["orders"], env={**env_for(tmp_path), "PIZZASHOP_TIME_SCALE": "fast"}
    )
    assert result.exit_code == 1 and "time_scale" in result.output


def test_orders_of_one_customer_newest_first_as_json(tmp_path: Path) -> None:
    model = open_readmodel(f"sqlite:///{tmp_path / 'readmodel.sqlite3'}")
    order = Order(customer_id="c2", name="Ada", sauce="Pesto", cheese="Gouda", main_topping="Pork")
    model.writer.apply(
        [
            OrderPlaced("older", order, 1_700_000_000_000),
            OrderPlaced("newer", order, 1_700_000_009_000),
            OrderPlaced(
                "theirs", order.model_copy(update={"customer_id": "c3"}), 1_700_000_005_000
            ),
        ],
        {},
    )
    model.close()
    runner = CliRunner()
    listed = runner.invoke(main, ["orders", "--customer", "c2", "--json"], env=env_for(tmp_path))
    assert listed.exit_code == 0, listed.output
    assert [o["order_id"] for o in json.loads(listed.output)] == ["newer", "older"]
    one = runner.invoke(main, ["orders", "--customer", "c2", "--limit", "1"], env=env_for(tmp_path))
    assert "newer" in one.output and "older" not in one.output and "Order received" in one.output
    nobody = runner.invoke(main, ["orders", "--customer", "nobody"], env=env_for(tmp_path))
    assert nobody.exit_code == 0 and "No orders yet" in nobody.output


def test_trace_of_an_order_the_read_model_does_not_know_is_one_line_and_exit_1(
    tmp_path: Path,
) -> None:
    with_one_order(tmp_path)
    result = CliRunner().invoke(main, ["trace", "nope"], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        "Error: no order 'nope' in the read model, so no time to look for it in Kafka"
    ]


def test_trace_with_the_broker_away_names_its_address_in_one_line_within_seconds(
    tmp_path: Path,
) -> None:
    with_one_order(tmp_path)
    started = time.monotonic()
    result = CliRunner().invoke(main, ["trace", "abc"], env=env_for(tmp_path))
    assert time.monotonic() - started < 10, "it gives up within seconds"
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "127.0.0.1:1" in result.output and "did not answer" in result.output, result.output


def test_reading_commands_never_make_a_read_model_and_say_where_they_looked(tmp_path: Path) -> None:
    for command in (["orders"], ["order-status", "abc"], ["trace", "abc"], ["retry", "abc"]):
        result = CliRunner().invoke(main, command, env=env_for(tmp_path))
        assert result.exit_code == 1, result.output
        assert f"no read model at {tmp_path / 'readmodel.sqlite3'}" in result.output, result.output
    assert not (tmp_path / "readmodel.sqlite3").exists(), "a reading command made a read model"


def test_verify_without_a_read_model_says_where_none_is_and_makes_none(tmp_path: Path) -> None:
    answer = CliRunner().invoke(
        main, ["readmodel", "verify"], env={"PIZZASHOP_STATE_DIR": str(tmp_path)}
    )
    assert answer.exit_code == 1 and "no read model at" in answer.output, answer.output
    assert not list(tmp_path.iterdir()), "verify made a read model"


def test_schemas_register_without_a_registry_says_how_to_configure_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["schemas", "register"], env=env_for(tmp_path))
    assert result.exit_code == 1
    assert "no Schema Registry is configured: set PIZZASHOP_SCHEMA_REGISTRY_URL" in result.output


def test_registry_status_without_one_running_or_configured_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["registry", "status"], env=env_for(tmp_path))
    assert result.exit_code == 1, result.output
    assert ": stopped" in result.output and "records are plain JSON" in result.output
    stopped = CliRunner().invoke(main, ["registry", "stop"], env=env_for(tmp_path))
    assert stopped.exit_code == 0 and "not running" in stopped.output
