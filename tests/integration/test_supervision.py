"""`pizzashop up` restarts a kitchen service killed mid-burst, and no order notices.

`up` runs as a real process here, its services as its children, so the test kills them the
way a crash would and watches `up` start them again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest

from pizzashop.config import Settings, as_environment
from tests.integration.test_faults import Burst, delivered_count, finish_and_check
from tests.shop_harness import ShopProcesses, wait_for

KITCHEN = ("assemble", "bake", "delivery")
# Orders keep coming through the three kills and the kitchen's rebalances after them.
ORDERS, BURST_SECONDS = 100, 10.0

pytestmark = pytest.mark.faults


@pytest.fixture
def settings(shop_settings: Settings) -> Settings:
    return shop_settings.replace(time_scale=0.03, log_level="INFO")


@pytest.fixture
def up(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`pizzashop up --no-web` on the session's broker (so it starts none), its log in up.log."""
    yield from running_up(settings, tmp_path, os.environ)


def running_up(
    settings: Settings, tmp_path: Path, environment: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    with (tmp_path / "up.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pizzashop", "up", "--no-web"],
            env={**environment, **as_environment(settings)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield process
    if process.poll() is None:  # the test failed before stopping it
        services = psutil.Process(process.pid).children()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            for service in services:
                if service.is_running():
                    service.kill()
            process.wait()


def service_pid(up: subprocess.Popen[bytes], name: str) -> int | None:
    """The pid of `up`'s running child for service `name`, if it has one."""
    for child in psutil.Process(up.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and child.cmdline()[-2:] == ["service", name]:
                return int(child.pid)
        except psutil.NoSuchProcess:
            continue
    return None


def kill_service(up: subprocess.Popen[bytes], name: str) -> int:
    """SIGKILL `up`'s running `name` service, as a crash would; its pid."""
    pid = wait_for(lambda: service_pid(up, name), timeout=30, what=f"{name} to be running")
    os.kill(pid, signal.SIGKILL)
    return pid


def kill_and_see_it_restarted(up: subprocess.Popen[bytes], name: str) -> None:
    killed = kill_service(up, name)
    wait_for(
        lambda: service_pid(up, name) not in (None, killed),
        timeout=30,
        what=f"up to start {name} again after it was killed",
    )


def test_up_restarts_each_kitchen_service_killed_mid_burst_and_no_order_is_lost_or_repeated(
    settings: Settings, up: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    up_log = tmp_path / "up.log"
    with Burst(settings, count=ORDERS, seconds=BURST_SECONDS) as burst:
        wait_for(
            lambda: delivered_count(settings, burst.order_ids) > 0,
            timeout=60,
            what="the first deliveries",
        )
        for victim in KITCHEN:
            kill_and_see_it_restarted(up, victim)
    # up's children are the shop here; ShopProcesses only lends finish_and_check up.log's tail.
    finish_and_check(ShopProcesses(settings, tmp_path), burst.order_ids)
    assert up.poll() is None, f"up stopped although each part was restarted:\n{up_log.read_text()}"
    for victim in KITCHEN:
        assert f"{victim} exited with code -9 (SIGKILL); restarting it in 1s" in up_log.read_text()
    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=30) == 0, up_log.read_text()


def test_up_stops_at_once_on_sigterm_even_while_a_service_waits_for_its_restart(
    up: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    up_log = tmp_path / "up.log"
    kill_and_see_it_restarted(up, "bake")
    kill_service(up, "bake")
    second_exit = "bake exited with code -9 (SIGKILL); restarting it in 2s"
    wait_for(
        lambda: second_exit in up_log.read_text(),
        timeout=10,
        what="up to notice bake's second exit",
    )
    up.send_signal(signal.SIGTERM)
    wait_for(
        lambda: "Stopping the shop" in up_log.read_text(),
        timeout=1.5,
        what="up to start stopping the shop before bake's 2s wait is over",
    )
    assert up.wait(timeout=30) == 0, up_log.read_text()
    assert up_log.read_text().count("Started bake") == 2, "bake was started again during the stop"


def pizzashop(settings: Settings, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pizzashop", *arguments],
        env={**os.environ, **as_environment(settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_shows_every_part_up_runs_and_the_shop_counts_its_restarts(
    settings: Settings, up: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    wait_for(
        lambda: pizzashop(settings, "status").returncode == 0,
        timeout=60,
        what="`pizzashop status` to find every part ready",
    )
    shown = pizzashop(settings, "status").stdout
    for part in ("shop", "assemble", "pantry", "bake", "delivery", "status"):
        assert re.search(rf"^{part}\s+ready\s", shown, re.MULTILINE), shown
    assert "Orders: " in shown
    parts = {
        p["part"]: p for p in json.loads(pizzashop(settings, "status", "--json").stdout)["parts"]
    }
    assert parts["assemble"]["partitions"] == 3 * settings.partitions  # three topics
    kill_and_see_it_restarted(up, "bake")
    shop_metrics = httpx.get(f"{parts['shop']['address']}/metrics", timeout=5).text
    assert 'pizzashop_part_restarts_total{part="bake"} 1.0' in shop_metrics
    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=30) == 0
    gone = pizzashop(settings, "status")
    assert gone.returncode == 1 and "no shop is running" in gone.stderr, gone.stderr


@pytest.fixture
def up_with_a_wedging_assemble(
    settings: Settings, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`up` whose first assemble process hangs in send_offsets_to_transaction (wedging/)."""
    wedging = Path(__file__).parent / "wedging"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(wedging), os.environ.get("PYTHONPATH")])),
        "PIZZASHOP_TEST_WEDGE": f"assemble:{tmp_path / 'wedged-once'}",
    }
    yield from running_up(settings, tmp_path, environment)


def test_up_restarts_a_service_whose_producer_wedged_and_every_order_completes_once(
    settings: Settings, up_with_a_wedging_assemble: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    up, up_log = up_with_a_wedging_assemble, tmp_path / "up.log"
    with Burst(settings, count=ORDERS, seconds=BURST_SECONDS) as burst:
        wait_for(
            lambda: (tmp_path / "wedged-once").exists(),
            timeout=60,
            what="assemble's first send_offsets_to_transaction",
        )
    wait_for(
        lambda: "assemble exited with code 75 (wedged producer)" in up_log.read_text(),
        timeout=90,
        what="the guard to end the wedged assemble",
    )
    finish_and_check(ShopProcesses(settings, tmp_path), burst.order_ids)
    log = up_log.read_text()
    assert "The producer is wedged: send_offsets_to_transaction has not returned" in log
    assert log.count("Started assemble") == 2, "up started assemble again, once"
    up.send_signal(signal.SIGTERM)
    assert up.wait(timeout=30) == 0, log
