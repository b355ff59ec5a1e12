"""Times as people read them, in the CLI's views, the web pages and the operator's views."""

from __future__ import annotations

from datetime import datetime


def clock(timestamp_ms: int | None, with_date: bool = False, with_ms: bool = False) -> str:
    """A timestamp of the wire (ms since the epoch) as local time, for people to read."""
    if timestamp_ms is None:
        return "--:--:--"
    shape = "%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S"
    shown = datetime.fromtimestamp(timestamp_ms / 1000).strftime(shape)
    return f"{shown}.{timestamp_ms % 1000:03d}" if with_ms else shown
