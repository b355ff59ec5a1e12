"""With the broker or the database away, or a setting the shop cannot use, every command
answers within seconds in one line naming the address (or the setting) and exits non-zero;
a service waiting for the broker says so at once and stops promptly on SIGTERM.

No broker is needed: "away" is 127.0.0.1 on a free port nobody listens on.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from pizzashop.contract import Order, OrderPlaced, Status, StatusChanged
from pizzashop.kafka.reaching import REACH_TIMEOUT
from pizzashop.readmodel.store import open_readmodel
from tests.ports import free_port

# A command waits at most REACH_TIMEOUT for an address that is away; starting Python and the
# imports come on top, and on a loaded machine they take seconds too. So each case's limit is
# the wait and a margin plus twice the time the same command takes to print its --help,
# measured just before: once for Python and the imports, once for what --help never does
# (starting and closing a Kafka client, which a starved machine slows as much). A command
# that hangs on the address (librdkafka's defaults are 30 to 60 s) still fails, and a busy
# machine does not: one CI run took 12.5 s for `dlq list` after a 3.1 s --help.
ANSWER_MARGIN = 3.0
SAY_WITHIN = 10.0  # seconds for a service to log its first failure, Python's start included
HANG_LIMIT = 20.0  # a command still running then hangs: it is killed and the case fails
STOP_WITHIN = 5.0  # seconds a service may take to stop after SIGTERM
PARALLEL_COMMANDS = 3  # each waits on a dead address, but starts Python first: that is CPU

DEAD_BROKER = f"127.0.0.1:{free_port()}"
DEAD_DATABASE = f"127.0.0.1:{free_port()}"
DEAD_REGISTRY = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
A_LONG_NAME = "x" * 2000


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    named: str  # what the one line must name: an address, a folder, a setting
    env: dict[str, str] = field(default_factory=dict)
    order_in_the_works: bool = False  # a read model with one order on its way (retry, trace)

    @property
    def title(self) -> str:
        shown = " ".join(arg if len(arg) < 40 else f"<{len(arg)} characters>" for arg in self.args)
        return f"{shown} {self.env or ''}".strip()


def order(*more: str, name: str = "Ann") -> tuple[str, ...]:
    return ("order", "--name", name, "--sauce", "Tomato", "--cheese", "Gouda",
            "--main-topping", "Pork", *more)  # fmt: skip


POSTGRES_AWAY = {"PIZZASHOP_DATABASE_URL": f"postgresql://pizza@{DEAD_DATABASE}/shop"}
REGISTRY_AWAY = {"PIZZASHOP_SCHEMA_REGISTRY_URL": DEAD_REGISTRY}
NO_READ_MODEL = "no read model at"

CASES = [
    Case(order(), DEAD_BROKER),
    Case(("orders",), NO_READ_MODEL),
    Case(("order-status", "abc"), NO_READ_MODEL),
    Case(("trace", "abc"), DEAD_BROKER, order_in_the_works=True),
    Case(("retry", "abc"), DEAD_BROKER, order_in_the_works=True),
    Case(("dlq", "list"), DEAD_BROKER),
    Case(("dlq", "replay", "0:5"), DEAD_BROKER),
    Case(("topics", "create"), DEAD_BROKER),
    Case(("pantry",), NO_READ_MODEL),
    Case(("pantry", "restock", "Eggs", "5"), DEAD_BROKER),
    Case(("status",), "no shop is running"),
    Case(("kafka", "status"), DEAD_BROKER),
    Case(("web",), DEAD_BROKER),
    Case(("up", "--no-web"), DEAD_BROKER),
    Case(("orders",), DEAD_DATABASE, POSTGRES_AWAY),
    Case(("order-status", "abc"), DEAD_DATABASE, POSTGRES_AWAY),
    Case(("service", "status"), DEAD_DATABASE, POSTGRES_AWAY),
    Case(("schemas", "register"), DEAD_REGISTRY, REGISTRY_AWAY),
    Case(("registry", "status"), DEAD_REGISTRY, REGISTRY_AWAY),
    Case(("orders",), "PIZZASHOP_DATABASE_URL", {"PIZZASHOP_DATABASE_URL": "mysql://pizza@db/x"}),
    Case(("service", "assemble"), "PIZZASHOP_LOG_LEVEL", {"PIZZASHOP_LOG_LEVEL": "verbose"}),
    Case(order(name=A_LONG_NAME), "name: "),
]


def shop_env(state_dir: Path, **more: str) -> dict[str, str]:
    """This process's environment (PYTHONPATH above all) with the shop pointed at nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIZZASHOP_")}
    return {
        **env,
        "PIZZASHOP_BOOTSTRAP_SERVERS": DEAD_BROKER,
        "PIZZASHOP_STATE_DIR": str(state_dir),
        "PIZZASHOP_WEB_PORT": str(free_port()),
        **more,
    }


def with_an_order_in_the_works(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    model = open_readmodel(f"sqlite:///{state_dir / 'readmodel.sqlite3'}")
    pizza = Order(customer_id="c1", name="Ann", sauce="Tomato", cheese="Gouda", main_topping="Pork")
    model.writer.apply(
        [
            OrderPlaced("abc", pizza, 1_700_000_000_000),
            StatusChanged("abc", Status.IN_OVEN, 1_700_000_001_000),
        ],
        {},
    )
    model.close()


@dataclass(frozen=True)
class Answer:
    case: Case
    code: int | None  # None: it hung and was killed
    stderr: str
    seconds: float
    start_seconds: float  # the same command's --help, just before: Python and the imports

    @property
    def limit(self) -> float:
        return 2 * self.start_seconds + REACH_TIMEOUT + ANSWER_MARGIN

    def problems(self) -> list[str]:
        lines = self.stderr.strip().splitlines()
        found = []
        if self.code is None or self.code == 0:
            found.append(f"exit code {self.code}, expected a failure")
        if self.seconds > self.limit:
            found.append(
                f"took {self.seconds:.1f}s, more than {self.limit:.1f}s"
                f" (2 x {self.start_seconds:.1f}s to start, {REACH_TIMEOUT:g}s to wait,"
                f" {ANSWER_MARGIN:g}s margin)"
            )
        if len(lines) != 1 or "Traceback" in self.stderr:
            found.append(f"{len(lines)} lines on stderr, expected exactly one")
        if self.case.named not in self.stderr:
            found.append(f"does not name {self.case.named!r}")
        return [f"pizzashop {self.case.title}: {p}\n{self.stderr}" for p in found]


def answer_of(case: Case, state_dir: Path) -> Answer:
    if case.order_in_the_works:
        with_an_order_in_the_works(state_dir)
    start_seconds = run_timed(case, state_dir, "--help")[2]
    code, stderr, seconds = run_timed(case, state_dir)
    return Answer(case, code, stderr, seconds, start_seconds)


def run_timed(case: Case, state_dir: Path, *more: str) -> tuple[int | None, str, float]:
    """The exit code (None when it hung and was killed), stderr and seconds of one run."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pizzashop", *case.args, *more],
            env=shop_env(state_dir, **case.env),
            cwd=state_dir.parent,
            capture_output=True,
            text=True,
            timeout=HANG_LIMIT,
        )
    except subprocess.TimeoutExpired as hung:
        stderr = hung.stderr.decode() if isinstance(hung.stderr, bytes) else hung.stderr or ""
        return None, stderr, time.monotonic() - started
    return done.returncode, done.stderr, time.monotonic() - started


def test_every_command_says_what_is_away_in_one_line_within_seconds(tmp_path: Path) -> None:
    with ThreadPoolExecutor(PARALLEL_COMMANDS) as pool:
        answers = list(
            pool.map(lambda n: answer_of(CASES[n], tmp_path / f"case-{n}"), range(len(CASES)))
        )
    problems = [problem for answer in answers for problem in answer.problems()]
    assert not problems, "\n\n".join(problems)
    made = [n for n in range(len(CASES)) if not CASES[n].order_in_the_works
            and (tmp_path / f"case-{n}" / "readmodel.sqlite3").exists()]  # fmt: skip
    assert not made, f"these made a read model: {[CASES[n].title for n in made]}"


class LogLines:
    """A process's stderr, line by line as it comes, for waiting on a line with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert process.stderr is not None
        threading.Thread(target=self._read, args=(process.stderr,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str, deadline: float) -> bool:
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if line is None:
                return False
            self.seen.append(line)
            if text in line:
                return True
        return False


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")
def test_a_service_without_a_broker_says_so_at_once_and_stops_soon_after_sigterm(
    tmp_path: Path,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pizzashop", "service", "assemble"],
        env=shop_env(tmp_path / "state"),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    log = LogLines(process)
    try:
        said = log.wait_for(DEAD_BROKER, started + SAY_WITHIN)
        assert said, "no line naming the broker's address:\n" + "".join(log.seen)
        with pytest.raises(subprocess.TimeoutExpired):  # it waits for the broker, it does not die
            process.wait(timeout=max(0.0, started + 1.0 - time.monotonic()))
        process.send_signal(signal.SIGTERM)
        asked_to_stop = time.monotonic()
        code = process.wait(timeout=HANG_LIMIT)
        stopped_after = time.monotonic() - asked_to_stop
    finally:
        process.kill()
        process.wait()
    log.wait_for("never said", time.monotonic() + 2.0)  # the rest of its lines, to show them
    shown = "".join(log.seen)
    assert stopped_after < STOP_WITHIN, f"stopped {stopped_after:.1f}s after SIGTERM:\n{shown}"
    assert code == 0, f"exit code {code}:\n{shown}"
    assert "could not find the shop's topics" in shown, shown
