"""Where the shop's spans go during `pizzashop bench --tracing`: an OTLP/HTTP endpoint that
takes every export and drops it, so the bench measures what tracing costs the shop (making,
batching, encoding and sending spans) without a collector to run."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pizzashop.local.ports import free_port


class _DropSpans(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def spans_dropped() -> Iterator[None]:
    """Within, the processes the bench starts export their spans to a sink of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _DropSpans)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    before = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield
    finally:
        if before is None:
            del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        else:
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = before
        server.shutdown()
        server.server_close()
