"""Generations of the read model: built beside the live one, switched atomically, followed by
every process; a schema version that the code checks instead of altering a database in place.

Every test runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from pizzashop.readmodel import SCHEMA_VERSION, ReadModelUnusable
from pizzashop.readmodel.generations import generations_of
from pizzashop.readmodel.rebuilding import carry_over_sign_ins
from pizzashop.readmodel.store import open_readmodel
from pizzashop.readmodel.writer import OrderWriter
from pizzashop.web.sign_ins import SignIns
from tests.unit.shop_events import placed, progress


def test_a_new_read_model_is_generation_one(url: str) -> None:
    open_readmodel(url).close()
    generations = generations_of(url)
    assert generations.live() == 1
    generations.close()


def test_opening_follows_the_switch_to_a_new_generation(url: str) -> None:
    first = open_readmodel(url)
    first.writer.apply([placed("old")], {("pizza-ordered", 0): 1})
    generations = generations_of(url)
    second = generations.fresh(2)
    OrderWriter(second).apply(progress("new"), {("pizza-ordered", 0): 9})
    second.close()

    generations.switch_to(2)

    reopened = open_readmodel(url)
    assert reopened.orders.get_order("new") is not None and reopened.orders.get_order("old") is None
    assert reopened.writer.stored_offsets() == {("pizza-ordered", 0): 9}
    for model in (first, reopened):
        model.close()
    generations.close()


def test_a_live_read_model_notices_the_switch_and_reads_the_new_generation(url: str) -> None:
    live = open_readmodel(url)
    live.writer.apply([placed("old")], {})
    generations = generations_of(url)
    generations.fresh(3).close()
    assert not live.database.switched(), "nothing was switched yet"

    generations.switch_to(3)

    assert live.database.switched() and live.database.generation == 3
    assert live.orders.get_order("old") is None
    assert not live.database.switched(), "a switch is noticed once"
    live.close()
    generations.close()


def test_a_web_process_follows_the_switch_by_itself(url: str) -> None:
    live = open_readmodel(url, follow_every=0.0)
    live.writer.apply([placed("old")], {})
    generations = generations_of(url)
    generations.fresh(2).close()
    generations.switch_to(2)
    assert live.orders.get_order("old") is None and live.database.generation == 2
    live.close()
    generations.close()


def test_sign_ins_carried_over_stay_signed_out(url: str) -> None:
    generations = generations_of(url)
    old = generations.open(1)
    SignIns(old).start("s1", "c1", 10)
    SignIns(old).start("s2", "c2", 10)
    SignIns(old).end("s2", 20)
    new = generations.fresh(2)

    carry_over_sign_ins(old, new)

    assert SignIns(new).is_open("s1", 0) and not SignIns(new).is_open("s2", 0)
    for closing in (old, new, generations):
        closing.close()


def test_a_read_model_of_an_older_schema_version_is_refused_with_what_to_run(url: str) -> None:
    model = generations_of(url).open(1)
    with model.transaction(writing=True) as cursor:  # as an older release would have left it
        cursor.execute("UPDATE schema_version SET version = 0")
    model.close()

    with pytest.raises(ReadModelUnusable, match=f"version 0, this code needs {SCHEMA_VERSION}"):
        open_readmodel(url)


def test_a_second_rebuild_at_once_is_refused(url: str) -> None:
    open_readmodel(url).close()
    one, other = generations_of(url), generations_of(url)
    with one.rebuilding(), pytest.raises(ReadModelUnusable, match="another"), other.rebuilding():
        pass
    with other.rebuilding():
        pass  # free again once the first is done
    one.close()
    other.close()
