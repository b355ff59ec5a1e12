"""How much history the shop's topics keep, and what it says of topics that keep less."""

from __future__ import annotations

from pizzashop.config import load_settings
from pizzashop.kafka.topics import history_config, short_history_warnings

FOR_EVER = {"retention.ms": "-1", "retention.bytes": "-1"}


def test_by_default_the_topics_keep_everything() -> None:
    assert history_config(load_settings()) == FOR_EVER


def test_a_retention_setting_keeps_that_many_hours() -> None:
    settings = load_settings(retention_hours=36)
    assert history_config(settings) == {"retention.ms": "129600000", "retention.bytes": "-1"}


def test_status_kept_seven_days_means_a_rebuild_misses_older_orders() -> None:
    found = {"pizza-status": {"retention.ms": "604800000", "retention.bytes": "-1"}}
    [line] = short_history_warnings(FOR_EVER, found)
    assert line.startswith("pizza-status keeps 7 days (retention.ms=604800000): ")
    assert "a read model rebuilt from the log would miss older orders" in line


def test_a_size_limit_is_a_short_history_too() -> None:
    found = {"pizza-ordered": {"retention.ms": "-1", "retention.bytes": "1048576"}}
    [line] = short_history_warnings(FOR_EVER, found)
    assert "1048576 bytes a partition" in line


def test_topics_that_keep_what_is_asked_or_more_are_not_mentioned() -> None:
    wanted = {"retention.ms": "86400000", "retention.bytes": "-1"}
    found = {
        "pizza-ordered": FOR_EVER,
        "pizza-baked": {"retention.ms": "172800000", "retention.bytes": "-1"},
        "pizza-dlq": {"retention.ms": "86400000", "retention.bytes": "-1"},
    }
    assert short_history_warnings(wanted, found) == []
