"""The log lines of every process: the seed's text by default, or one JSON object a line.

`(msvc_assemble) INFO 21:00:39.604 - message` is the seed's format, kept as the default.
With `PIZZASHOP_LOG_FORMAT=json` each line is an object with time, level, service, order id,
trace id and message, for a log collector: the order and trace a log call names with
`extra={"order_id": ..., "trace_id": ...}`, else the current span's trace.
"""

from __future__ import annotations

import json
import logging
import time

from pizzashop.observe import tracing


class JsonLines(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "service": self.service,
            "order_id": getattr(record, "order_id", None),
            "trace_id": getattr(record, "trace_id", None)
            or (tracing.current_trace_id() if tracing.enabled() else None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _iso_time(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def seed_lines(service: str) -> logging.Formatter:
    return logging.Formatter(
        f"(msvc_{service}) %(levelname)s %(asctime)s.%(msecs)03d - %(message)s", datefmt="%H:%M:%S"
    )


def configure_logging(service: str, level: str = "INFO", format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines(service) if format == "json" else seed_lines(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
