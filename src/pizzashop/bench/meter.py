"""CPU and memory of the processes under test, sampled with psutil while the bench runs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil

SAMPLE_SECONDS = 0.25


@dataclass
class Usage:
    cpu_seconds: float = 0.0
    peak_rss: int = 0  # bytes
    # Proportional set size: each page shared with other processes (the interpreter, shared
    # libraries) counted as its share. Summed over processes, it counts each page once, where
    # RSS counts a library once for every process that maps it.
    peak_pss: int = 0  # bytes
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)


class ProcessMeter:
    """Samples each process's resident memory in a thread; CPU time is read once, at the end."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.usage = {name: Usage() for name in pids}
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._sample_until_stopped, name="bench-meter", daemon=True
        )
        self._start = time.monotonic()
        self._baseline: dict[str, float] = {}

    def start(self) -> ProcessMeter:
        self._start = time.monotonic()
        # CPU spent starting up is not the rush's: it is taken off at the end.
        self._baseline = {name: cpu_seconds(p) for name, p in self._processes.items()}
        self._sample()  # and at the end: a run shorter than a sample is measured too
        self._thread.start()
        return self

    def stop(self) -> dict[str, Usage]:
        """Stop sampling and read CPU time: call it before the processes are stopped."""
        self._stopping.set()
        self._thread.join()
        self._sample()
        for name, process in self._processes.items():
            try:
                self.usage[name].cpu_seconds = cpu_seconds(process) - self._baseline[name]
            except psutil.NoSuchProcess:
                self.usage[name].cpu_seconds = float("nan")  # it died; the bench reports that
        return self.usage

    def _sample_until_stopped(self) -> None:
        while not self._stopping.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        at = time.monotonic() - self._start
        for name, process in self._processes.items():
            try:
                memory = process.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            usage = self.usage[name]
            usage.rss.append((round(at, 2), memory.rss))
            usage.peak_rss = max(usage.peak_rss, memory.rss)
            usage.peak_pss = max(usage.peak_pss, memory.pss)


def cpu_seconds(process: psutil.Process) -> float:
    """The CPU time the process has used so far, user and system, in seconds."""
    times = process.cpu_times()
    return float(times.user + times.system)
