"""How `pizzashop up` looks after its parts: a fake clock, fake processes, no process runs."""

from __future__ import annotations

import itertools
import logging

import pytest

from pizzashop.config import load_settings
from pizzashop.local.shop import (
    Child,
    Supervisor,
    kind_of,
    observe_ports,
    part_names,
    settings_of_part,
)
from pizzashop.runtime.wedge import WEDGED_EXIT_CODE
from pizzashop.services import SERVICE_NAMES, services_to_run

PARTS = ("assemble", "pantry", "bake", "delivery", "status", "web")
_pids = itertools.count(1000)


class FakeProcess:
    def __init__(self) -> None:
        self.pid = next(_pids)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.returncode = -sig

    def wait(self, timeout: float | None = None) -> int:
        assert self.returncode is not None, "a fake process only ends when told to"
        return self.returncode

    def kill(self) -> None:
        self.returncode = -9


class FakeShop:
    """Starts fake parts, keeps the time, and says what ran."""

    def __init__(self) -> None:
        self.now = 0.0
        self.started: list[str] = []
        self.supervisor = Supervisor(PARTS, self.start, clock=lambda: self.now)
        self.supervisor.start_all()

    def start(self, name: str) -> Child:
        self.started.append(name)
        return Child(name, FakeProcess())

    def process(self, name: str) -> FakeProcess:
        process = self.supervisor.parts[name].child.process
        assert isinstance(process, FakeProcess)
        return process

    def crash(self, name: str, code: int = 1) -> str | None:
        """The part exits on its own; what the supervisor says on its next heartbeat."""
        self.process(name).returncode = code
        return self.supervisor.look_after_parts()

    def wait_for_restart(self, name: str) -> float:
        """Let the time pass until the part is started again; how long that was."""
        wait = self.supervisor.waiting()[name]
        self.now += wait
        assert self.supervisor.look_after_parts() is None
        assert self.process(name).poll() is None, f"{name} was not restarted after {wait}s"
        return wait

    def run_for(self, seconds: float) -> None:
        self.now += seconds
        assert self.supervisor.look_after_parts() is None


@pytest.fixture
def shop() -> FakeShop:
    return FakeShop()


def test_a_crashed_part_is_restarted_only_once_its_wait_is_over(shop: FakeShop) -> None:
    first = shop.process("bake")
    shop.run_for(10)
    shop.crash("bake")
    shop.run_for(0.9)
    assert shop.process("bake") is first, "restarted before its 1s wait was over"
    shop.run_for(0.1)
    assert shop.process("bake") is not first and shop.process("bake").poll() is None
    assert shop.started.count("bake") == 2


def test_a_part_that_keeps_crashing_waits_twice_as_long_each_time_up_to_30s(shop: FakeShop) -> None:
    waits = []
    for _ in range(7):
        shop.run_for(50)  # up a while, but not long enough to count as healthy again
        assert shop.crash("assemble") is None, "no give-up: its exits are more than 60s apart"
        waits.append(shop.wait_for_restart("assemble"))
    assert waits == [1, 2, 4, 8, 16, 30, 30]


def test_five_exits_within_60s_give_up_on_the_part(shop: FakeShop) -> None:
    for _ in range(4):
        assert shop.crash("delivery") is None
        shop.wait_for_restart("delivery")
    assert shop.now < 60, "the four waits (1+2+4+8 s) keep the five exits within a minute"
    assert shop.crash("delivery") == "delivery"
    assert "delivery" not in shop.supervisor.waiting(), "a part given up on is not restarted"
    assert shop.started.count("delivery") == 5


def test_five_exits_spread_over_more_than_60s_are_no_reason_to_give_up(shop: FakeShop) -> None:
    for _ in range(5):
        shop.run_for(14)
        assert shop.crash("status") is None
        shop.wait_for_restart("status")
    assert shop.started.count("status") == 6


def test_a_part_up_for_a_minute_starts_again_from_the_first_wait(shop: FakeShop) -> None:
    for _ in range(3):
        shop.crash("web")
        shop.wait_for_restart("web")
    shop.run_for(60)
    shop.crash("web")
    assert shop.wait_for_restart("web") == 1


def test_one_part_restarting_leaves_the_others_running_untouched(shop: FakeShop) -> None:
    others = {name: shop.process(name) for name in PARTS if name != "bake"}
    for _ in range(4):
        shop.crash("bake")
        shop.wait_for_restart("bake")
    assert {name: shop.process(name) for name in others} == others
    assert all(process.poll() is None for process in others.values())
    assert [name for name in shop.started if name != "bake"] == list(others)


def test_a_part_waiting_for_its_restart_does_not_hold_up_another(shop: FakeShop) -> None:
    shop.crash("assemble")
    shop.run_for(0.5)
    assert shop.crash("bake") is None
    assert shop.supervisor.waiting() == {"assemble": 0.5, "bake": 1.0}
    shop.run_for(0.5)
    assert shop.supervisor.waiting() == {"bake": 0.5}, "assemble is back; bake waits on"
    shop.run_for(0.5)
    assert shop.supervisor.waiting() == {}
    assert shop.started.count("assemble") == shop.started.count("bake") == 2


def test_each_exit_is_logged_loudly_with_its_code_and_signal(
    shop: FakeShop, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="pizzashop.local.shop"):
        shop.crash("assemble", code=-9)
        shop.wait_for_restart("assemble")
        shop.crash("assemble", code=3)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "assemble exited with code -9 (SIGKILL); restarting it in 1s"),
        (logging.ERROR, "assemble exited with code 3; restarting it in 2s"),
    ]


def test_giving_up_names_the_part_that_kept_failing(
    shop: FakeShop, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(4):
        shop.crash("web")
        shop.wait_for_restart("web")
    with caplog.at_level(logging.ERROR, logger="pizzashop.local.shop"):
        shop.crash("web", code=1)
    assert caplog.records[-1].getMessage() == (
        "web exited with code 1, its 5 exits within 60s: it keeps failing; stopping the shop"
    )


def test_one_instance_of_each_part_keeps_its_plain_name() -> None:
    assert part_names(1, with_web=True) == list(PARTS)


def test_with_stock_not_counted_the_shop_runs_no_pantry() -> None:
    services = services_to_run(load_settings(count_stock=False))
    assert part_names(1, with_web=True, services=services) == [p for p in PARTS if p != "pantry"]
    assert services_to_run(load_settings()) == SERVICE_NAMES


def test_many_instances_are_numbered_and_each_runs_its_kind() -> None:
    names = part_names(3, with_web=True)
    assert names[:3] == ["assemble-1", "assemble-2", "assemble-3"]
    assert names[-3:] == ["web-1", "web-2", "web-3"]
    assert len(names) == 18
    assert [kind_of(name) for name in ("bake-2", "web-3", "status")] == ["bake", "web", "status"]


def test_web_processes_serve_on_neighbouring_ports_and_services_show_themselves_apart() -> None:
    settings = load_settings(web_port=8000, observe_port=9100)
    ports = observe_ports(settings, part_names(2, with_web=True))
    assert [ports["web-1"], ports["web-2"]] == [8000, 8001]
    assert ports["shop"] == 9100
    services = [port for name, port in ports.items() if kind_of(name) not in ("web", "shop")]
    assert sorted(services) == list(range(9101, 9111)), "each service its own port"
    web_2 = settings_of_part(settings, "web-2", ports["web-2"])
    assert (web_2.web_port, web_2.observe_port) == (8001, 8001)
    assert settings_of_part(settings, "bake-2", ports["bake-2"]).web_port == 8000


def test_a_part_that_exits_with_a_wedged_producer_is_restarted_and_said_to_be_wedged(
    shop: FakeShop, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pizzashop.local.shop"):
        assert shop.crash("assemble", code=WEDGED_EXIT_CODE) is None, "one exit is no give-up"
    shop.wait_for_restart("assemble")
    assert shop.started.count("assemble") == 2
    assert any("exited with code 75 (wedged producer)" in r.getMessage() for r in caplog.records)
