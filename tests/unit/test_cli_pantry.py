"""`pizzashop pantry`: every ingredient and how much is left, from the read model; `pantry
restock` refuses what is not on the menu or not an amount in one line, before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pizzashop.cli import main
from pizzashop.commands.ordering import OrderNotAccepted
from pizzashop.contract import Restock, StockLevel
from pizzashop.menu import INGREDIENTS
from pizzashop.readmodel.store import open_readmodel
from pizzashop.readmodel.writer import apply_to


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        "PIZZASHOP_STATE_DIR": str(tmp_path),
        "PIZZASHOP_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "PIZZASHOP_PANTRY_DEFAULT_STOCK": "25",
    }


class FakeDesk:
    """A desk that records each restock instead of sending it (or fails as told)."""

    def __init__(self, fails_with: Exception | None = None) -> None:
        self.restocked: list[tuple[str, int]] = []
        self.fails_with = fails_with

    async def restock(self, ingredient: str, amount: int) -> Restock:
        if self.fails_with is not None:
            raise self.fails_with
        self.restocked.append((ingredient, amount))
        return Restock("r-1", ingredient, amount)


def desk_given(monkeypatch: pytest.MonkeyPatch, desk: FakeDesk | None) -> None:
    """`desk_for_one_command` answers `desk`; with None, any call fails the test."""

    def for_one_command(*_: Any, **__: Any) -> FakeDesk:
        assert desk is not None, "nothing may be sent"
        return desk

    monkeypatch.setattr("pizzashop.cli.pantry.desk_for_one_command", for_one_command)


def test_pantry_shows_every_ingredient_and_marks_the_sold_out(tmp_path: Path) -> None:
    model = open_readmodel(f"sqlite:///{tmp_path / 'readmodel.sqlite3'}")
    levels = [StockLevel("Mushroom", 0), StockLevel("Pesto", 1_234)]
    apply_to(model.writer, levels, {("pizza-stock", 0): 2})
    model.close()

    result = CliRunner().invoke(main, ["pantry"], env=env_for(tmp_path))

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split("  ")[0].strip() for line in lines] == list(INGREDIENTS)
    shown = {line.split("  ")[0].strip(): line.split()[-1] for line in lines}
    assert (shown["Pesto"], shown["Tomato"]) == ("1,234", "25"), "stored, else the starting stock"
    assert [line for line in lines if line.endswith("sold out")] == [
        line for line in lines if line.startswith("Mushroom")
    ]


def test_pantry_without_a_read_model_says_where_it_looked(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["pantry"], env=env_for(tmp_path))
    assert result.exit_code == 1 and "no read model at" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["Mushrom", "5"], "'Mushrom' is not an ingredient on the menu"),
        (["Mushroom", "0"], "from 1 to 1,000,000, not '0'"),
        (["Mushroom", "-5"], "from 1 to 1,000,000, not '-5'"),
        (["Mushroom", "lots"], "not 'lots'"),
        (["Mushroom", "1000001"], "not '1000001'"),
    ],
)
def test_a_restock_that_cannot_be_one_is_one_line_exit_2_and_nothing_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], said: str
) -> None:
    desk_given(monkeypatch, None)
    result = CliRunner().invoke(main, ["pantry", "restock", *arguments], env=env_for(tmp_path))
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Error: not restocked: ") and said in result.stderr


def test_a_restock_is_sent_by_the_menus_name_and_told_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = FakeDesk()
    desk_given(monkeypatch, desk)
    result = CliRunner().invoke(
        main, ["pantry", "restock", "black OLIVES", "1500"], env=env_for(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert desk.restocked == [("Black olives", 1500)]
    assert result.stdout == "Restocked Black olives: 1,500 more sent to the pantry\n"


def test_a_restock_the_broker_refused_is_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk_given(monkeypatch, FakeDesk(fails_with=OrderNotAccepted("the broker said no")))
    result = CliRunner().invoke(main, ["pantry", "restock", "Onion", "3"], env=env_for(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == "Error: Onion not restocked: the broker said no\n"
