"""Free ports for the shop's servers: never one that another picker took a moment ago."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pizzashop.local import ports


def test_a_port_picked_is_not_picked_again_until_its_server_had_time_to_bind_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Free when picked, a port is bound by its server only once that process has started:
    in a full suite a second picker took the same one meanwhile, and a service exited with
    'Address already in use'."""
    monkeypatch.setattr(ports, "PICKED", tmp_path / "picked-first")
    port = ports.free_port()
    monkeypatch.setattr(ports, "PICKED", tmp_path / "picked")
    monkeypatch.setattr(random, "randrange", lambda start, stop: port)
    assert ports.free_port() == port
    with pytest.raises(RuntimeError, match="no block of 1 free ports"):
        ports.free_port()  # the only port it may pick is still held for the first picker
    monkeypatch.setattr(ports, "PICKED_FOR", 0.0)
    assert ports.free_port() == port, "held for a while only"


def test_a_block_is_held_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "PICKED", tmp_path / "picked-first")
    base = ports.free_port_block(20)  # twenty ports free now, the test's to pick among
    monkeypatch.setattr(ports, "PICKED", tmp_path / "picked")
    bases = iter([base, base + 2, base + 10])
    monkeypatch.setattr(random, "randrange", lambda start, stop: next(bases))
    assert ports.free_port_block(3) == base
    assert ports.free_port_block(3) == base + 10, "base + 2 overlaps the first block"
