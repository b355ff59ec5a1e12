"""`pizzashop status`: every part of the running shop, as its own /readyz tells it.

`pizzashop up` writes which parts it runs and where each shows itself (shop.parts_file);
each part answers for itself, so this reads no Kafka and no log. The orders come from
the read model, when there is one where the settings point.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pizzashop.config import Settings
from pizzashop.contract import Status
from pizzashop.local.shop import parts_file

ASK_TIMEOUT = 2.0


@dataclass(frozen=True)
class PartState:
    name: str
    address: str
    answer: dict[str, Any] | None  # its /readyz, or None when it did not answer

    @property
    def health(self) -> str:
        if self.answer is None:
            return "down"
        return "ready" if self.answer.get("ready") else "not ready"

    def as_dict(self) -> dict[str, Any]:
        return {"part": self.name, "address": self.address, "health": self.health,
                **(self.answer or {})}  # fmt: skip


class NoShopRunning(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no shop is running from {path.parent} (there is no {path.name}, which "
            "`pizzashop up` writes there); start one with `pizzashop up`, or point "
            "PIZZASHOP_STATE_DIR at the running shop's folder"
        )


def part_states(settings: Settings) -> list[PartState]:
    path = parts_file(settings)
    try:
        addresses: dict[str, str] = json.loads(path.read_text())["parts"]
    except FileNotFoundError:
        raise NoShopRunning(path) from None
    return [PartState(name, address, ask(address)) for name, address in addresses.items()]


def ask(address: str) -> dict[str, Any] | None:
    """A part's readiness, ready or not (503 carries it too); None if nothing answers."""
    try:
        with urllib.request.urlopen(f"{address}/readyz", timeout=ASK_TIMEOUT) as answer:
            body = answer.read()
    except urllib.error.HTTPError as refused:
        body = refused.read()
    except (OSError, TimeoutError):
        return None
    try:
        found: dict[str, Any] = json.loads(body)
    except ValueError:
        return None
    return found


COLUMNS = "{:<11} {:<10} {:>10} {:>6} {:>12}  {}"


def table(parts: list[PartState]) -> list[str]:
    lines = [COLUMNS.format("part", "health", "partitions", "lag", "in the works", "address")]
    for part in parts:
        answer = part.answer or {}
        lines.append(
            COLUMNS.format(
                part.name,
                part.health,
                _shown(answer.get("partitions")),
                _shown(answer.get("lag")),
                _shown(answer.get("orders_in_the_works")),
                part.address,
            )
        )
        lines.extend(f"  - {why}" for why in answer.get("missing", []))
    return lines


def _shown(value: object) -> str:
    return "" if value is None else str(value)


def orders_line(counts: dict[Status, int]) -> str:
    shown = [f"{counts.get(s, 0)} {s.name.lower().replace('_', ' ')}" for s in Status]
    return "Orders: " + ", ".join(shown)
