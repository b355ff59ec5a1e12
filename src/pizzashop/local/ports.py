"""Ports on this machine: a free one when the settings leave the choice to the shop."""

from __future__ import annotations

import random
import socket


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
    """The first of `size` consecutive free ports (a cluster's nodes take neighbouring ports).

    Below the kernel's ports for outgoing connections: one of those can be taken by any
    client between this check and the broker's bind (seen with tests in parallel)."""
    top = max(_ephemeral_ports_start(), 20_000 + 1_000)
    for _ in range(200):
        base = random.randrange(20_000, top - size)
        if all(is_free(base + i, host) for i in range(size)):
            return base
    raise RuntimeError(f"no block of {size} free ports found on {host}")
