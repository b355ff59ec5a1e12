"""Ports on this machine: a free one when the settings leave the choice to the shop."""

from __future__ import annotations

import contextlib
import fcntl
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# Ports picked lately, by any process of the shop on this machine: a port is free when picked
# and bound by its server only a moment later (a child process starting), so another picker
# must not take it meanwhile (seen in a full suite: a service exited "Address already in use").
PICKED = Path(tempfile.gettempdir()) / "pizzashop-ports-picked"
PICKED_FOR = 120.0  # seconds: longer than any server of the shop takes to start and bind


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def can_listen_on(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server may listen on `port` now: as servers do (SO_REUSEADDR), connections
    of a server that just stopped, still in TIME_WAIT, do not hold it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, for a server about to listen on it (see `free_port_block`)."""
    return free_port_block(1, host)


def _ephemeral_ports_start() -> int:
    """Where the kernel's ports for outgoing connections begin (Linux: 32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port_block(size: int, host: str = "127.0.0.1") -> int:
    """The first of `size` consecutive free ports (a cluster's nodes take neighbouring ports),
    none picked by the shop lately (see PICKED).

    Below the kernel's ports for outgoing connections: one of those can be taken by any
    client between this check and the broker's bind (seen with tests in parallel)."""
    top = max(_ephemeral_ports_start(), 20_000 + 1_000)
    with _picked_lately() as picked:
        for _ in range(200):
            block = range(base := random.randrange(20_000, top - size), base + size)
            if not picked.keys() & set(block) and all(is_free(port, host) for port in block):
                picked.update(dict.fromkeys(block, time.time()))
                return base
    raise RuntimeError(f"no block of {size} free ports found on {host}")


@contextlib.contextmanager
def _picked_lately() -> Iterator[dict[int, float]]:
    """The ports picked in the last PICKED_FOR seconds, each with when; what the caller adds is
    kept. One picker at a time on the machine (a lock on the file); none kept if the file
    cannot be used."""
    try:
        file = PICKED.open("a+")
    except OSError:
        yield {}
        return
    with file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        picked = _still_held(file.read().split(), time.time())
        yield picked
        file.seek(0)
        file.truncate()
        file.write("".join(f"{port} {at}\n" for port, at in picked.items()))


def _still_held(words: list[str], now: float) -> dict[int, float]:
    held: dict[int, float] = {}
    for port, at in zip(words[::2], words[1::2], strict=False):
        with contextlib.suppress(ValueError):
            if now - float(at) < PICKED_FOR:
                held[int(port)] = float(at)
    return held
