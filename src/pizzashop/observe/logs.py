"""The log lines of every process: the seed's text by default, or one JSON object a line.

`(msvc_assemble) INFO 21:00:39.604 - message` is the seed's format, kept as the default.
With `PIZZASHOP_LOG_FORMAT=json` each line is an object with time, level, service, order id,
trace id and message, for a log collector: the order and trace a log call names with
`extra={"order_id": ..., "trace_id": ...}`; else the trace of that order in the batch being
written (`traces_of`), or the current span's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from pizzashop.observe import tracing
from pizzashop.observe.inert import inert

_batch_traces: ContextVar[Mapping[str, str] | None] = ContextVar("batch_traces", default=None)


@contextmanager
def traces_of(orders: Mapping[str, str]) -> Iterator[None]:
    """Within, a line about one of these orders names its trace (order id -> trace id)."""
    token = _batch_traces.set(orders)
    try:
        yield
    finally:
        _batch_traces.reset(token)


class JsonLines(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        order_id = getattr(record, "order_id", None)
        line = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "service": self.service,
            "order_id": order_id,
            "trace_id": getattr(record, "trace_id", None) or self._trace_of(order_id),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)

    @staticmethod
    def _trace_of(order_id: str | None) -> str | None:
        if not tracing.enabled():
            return None
        batch = _batch_traces.get() or {}
        return batch.get(order_id or "") or tracing.current_trace_id()


def _iso_time(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def seed_lines(service: str) -> logging.Formatter:
    return logging.Formatter(
        f"(msvc_{service}) %(levelname)s %(asctime)s.%(msecs)03d - %(message)s", datefmt="%H:%M:%S"
    )


class InertArguments(logging.Filter):
    """A line's arguments (order ids, names, values: text from outside) are made inert; the
    line's own words, the seed's multi-line delivery report among them, are kept as written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(inert(a) if isinstance(a, str) else a for a in record.args)
        return True


def configure_logging(service: str, level: str = "INFO", format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(InertArguments())
    handler.setFormatter(JsonLines(service) if format == "json" else seed_lines(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
