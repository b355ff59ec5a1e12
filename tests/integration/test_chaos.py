"""A short chaos run with a fixed seed: the whole shop on a three-node cluster of its own,
two instances of each service (the pantry's too), orders and cancels, scarce toppings and
restocks, every kind of fault at least once; then no order lost, none twice, every status in
order, every poison record parked, and every ingredient counted exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pizzashop.chaos import ChaosPlan, run_chaos
from pizzashop.chaos.faults import Kind
from pizzashop.config import load_settings

pytestmark = pytest.mark.faults

SEED = 20
FAULT_SECONDS = 30.0  # the first five faults are one of each kind: with this seed, by 24.4 s


def test_a_short_chaos_run_keeps_every_guarantee(tmp_path: Path) -> None:
    plan = ChaosPlan(seed=SEED, duration=FAULT_SECONDS, rate=3.0, state_dir=tmp_path / "chaos")
    report = run_chaos(load_settings(state_dir=tmp_path), plan, say=print)
    print(report.text())
    assert report.violations == [], report.text()
    missing = [kind for kind in Kind if not report.faults_by_kind.get(kind)]
    assert not missing, f"fault kinds that never happened: {missing}\n{report.text()}"
    assert report.delivered and report.cancelled and report.sold_out, report.text()
    assert report.stock.released and report.stock.restocks_sent_twice, report.text()
    assert report.poison_parked == report.poison_written, report.text()
