"""What a service's Kafka consumer says about it, and whether the service is ready.

librdkafka reports its statistics (a JSON document) every `STATS_INTERVAL_MS` from the
service's own poll. From them come whether it has joined its group and its lag, without
asking the broker: a loop that stops polling (a commit that hangs) stops reporting, so its
readiness goes stale and says so.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

STATS_INTERVAL_MS = 1000
STALE_AFTER_SECONDS = 5.0


@dataclass(frozen=True)
class GroupView:
    """One statistics report of a consumer: its group membership and per-partition lag."""

    coordinator_up: bool  # the group coordinator is known and connected
    joined: bool  # a steady member of its group (with partitions or standing by)
    partitions: int  # assigned to it
    lag: dict[tuple[str, int], int]  # records not read yet, per partition it holds
    at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_stats(cls, stats_json: str, read_committed: bool) -> GroupView:
        stats = json.loads(stats_json)
        group = stats.get("cgrp", {})
        return cls(
            coordinator_up=group.get("state") == "up",
            joined=group.get("join_state") == "steady",
            partitions=int(group.get("assignment_size", 0)),
            lag=_lag(stats.get("topics", {}), read_committed),
        )

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())


def _lag(topics: dict[str, Any], read_committed: bool) -> dict[tuple[str, int], int]:
    """End of each partition it fetches (the last stable offset when it reads committed
    records only) minus the next offset it will hand to the service."""
    end_field = "ls_offset" if read_committed else "hi_offset"
    lag = {}
    for topic, about in topics.items():
        for number, partition in about.get("partitions", {}).items():
            end, position = partition.get(end_field, -1), partition.get("app_offset", -1)
            if int(number) >= 0 and partition.get("fetch_state") == "active" and end >= 0:
                lag[(topic, int(number))] = max(0, end - max(position, 0))
    return lag


@dataclass(frozen=True)
class Readiness:
    ready: bool
    missing: list[str]  # why it is not ready, in words; empty when it is
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "missing": self.missing, **self.detail}


# Problems that do not stop a service from working: a record it could not read is
# dead-lettered, a client error is either passing or shows in the group's state.
HARMLESS_PROBLEMS = frozenset({"client", "consume"})


def service_readiness(
    service: str,
    view: GroupView | None,
    problems: dict[str, str],
    orders_in_the_works: int,
    now: float | None = None,
    partitions_restored: int = 0,
) -> Readiness:
    """Ready: a steady member of its group, heard from lately, no failing commit or retry."""
    now = time.monotonic() if now is None else now
    missing = [detail for what, detail in problems.items() if what not in HARMLESS_PROBLEMS]
    if view is None:
        missing.append("not connected to Kafka yet")
    elif now - view.at > STALE_AFTER_SECONDS:
        missing.append(f"no word from its Kafka client for {now - view.at:.0f}s")
    elif not view.coordinator_up:
        missing.append("cannot reach its group's coordinator")
    elif not view.joined:
        missing.append("joining its consumer group")
    detail = {
        "service": service,
        "partitions": None if view is None else view.partitions,
        "lag": None if view is None else view.total_lag,
        "orders_in_the_works": orders_in_the_works,
        # Partitions whose state it has rebuilt (what readiness does not wait for: after a
        # broker restart that can take as long as an open transaction). The bench waits for it.
        "partitions_restored": partitions_restored,
    }
    return Readiness(not missing, missing, detail)
