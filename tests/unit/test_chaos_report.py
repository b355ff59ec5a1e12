"""The chaos report's measure of recovery, on hand-made times."""

from __future__ import annotations

from pizzashop.chaos.faults import Fault, Happened, Kind
from pizzashop.chaos.report import longest_by_kind, recoveries


def test_a_fault_recovers_when_every_order_accepted_before_its_end_is_final() -> None:
    killed = Happened(Fault(Kind.KILL, "bake-1"), began=10.0, ended=11.0)
    burst = Happened(Fault(Kind.BURST, "40 orders"), began=20.0, ended=20.0)
    still_on = Happened(Fault(Kind.PAUSE, "status-2", 13.0), began=25.0)
    accepted = {"a": 100.0 + 5, "b": 100.0 + 10.5, "c": 100.0 + 19.0, "d": 100.0 + 21.0}
    final = {"a": 100.0 + 7, "b": 100.0 + 16.0, "c": 100.0 + 22.5, "d": 100.0 + 23.0}
    recovered = recoveries([killed, burst, still_on], accepted, final, started=100.0)
    assert [(r.fault, r.seconds) for r in recovered] == [
        ("kill bake-1", 5.0),  # b, accepted before it ended, was final 5 s after
        ("burst 40 orders", 2.5),  # c was the last accepted before it
    ]
    assert longest_by_kind(recovered) == {"kill": 5.0, "burst": 2.5}
