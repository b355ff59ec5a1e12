"""A service process's window: /healthz, /readyz and /metrics on a small HTTP port of its own.

It runs in a thread beside the Kafka loop and only reads what the loop publishes, so a slow
scrape never holds up an order.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pizzashop.observe.health import Readiness

log = logging.getLogger("pizzashop.observe")

JSON = "application/json"


class ObserveServer:
    """Serves the three endpoints until `close()`; `port` 0 takes a free one."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Callable[[], Readiness],
        wedged: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler_for(readiness, wedged))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="observe", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ObserveServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(
    readiness: Callable[[], Readiness], wedged: Callable[[], str | None]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._healthz(wedged())
            elif path == "/readyz":
                answer = readiness()
                body = json.dumps(answer.as_dict()).encode()
                self._send(200 if answer.ready else 503, JSON, body)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest())
            else:
                self._send(404, JSON, b'{"detail": "Not Found"}')

        def _healthz(self, wedged: str | None) -> None:
            if wedged is None:
                self._send(200, JSON, b'{"status": "ok"}')
            else:  # about to exit to be restarted (runtime/wedge.py)
                body = json.dumps({"status": "wedged", "detail": wedged}).encode()
                self._send(503, JSON, body)

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("observe: " + format, *args)  # scrapes every few seconds: not for INFO

    return Handler
