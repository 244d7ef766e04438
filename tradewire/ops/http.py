"""``/metrics``, ``/healthz`` and ``/readyz`` for a process that has no HTTP server of its own.

The engine service spends its time in one asyncio loop applying batches; a scrape must not wait for
a batch to finish, and a slow scraper must not delay one. So the server here runs in a daemon thread
(the way ``prometheus_client.start_http_server`` does) and never touches the loop: it reads the
metric registry, which is thread-safe, and calls the process's readiness callable, which must be
cheap and only read state (an attribute or two), because it runs on the server's thread.

The answers are built by pure functions (:func:`metrics_response`, :func:`health_response`,
:func:`ready_response`, :func:`route`) so that a process with its own HTTP framework (the gateway)
serves the very same bytes without this server.

- ``GET /metrics``: the Prometheus text format (or OpenMetrics when the scraper asks for it).
- ``GET /healthz``: 200 while the process is alive enough to answer; liveness probes restart on
  anything else.
- ``GET /readyz``: 200 when ``ready()`` says so, else 503; the body is
  ``{"ready": bool, "reason": str}`` either way, so an operator sees why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import orjson
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

Readiness = Callable[[], tuple[bool, str]]
"""Answers "should traffic come here?" with the reason, e.g. ``(False, "replaying journal")``."""

JSON: Final = "application/json"
TEXT: Final = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


def metrics_response(accept: str | None, registry: CollectorRegistry = REGISTRY) -> Response:
    """The registry's samples, in the format the scraper's ``Accept`` header prefers."""
    encoder, content_type = choose_encoder(accept or "")
    return Response(200, content_type, encoder(registry))


def health_response() -> Response:
    return Response(200, JSON, b'{"alive":true}')


def ready_response(ready: Readiness) -> Response:
    """200 or 503 with the reason; a callable that raises means "not ready", with the error as reason."""
    try:
        is_ready, reason = ready()
    except Exception as exc:
        is_ready, reason = False, f"readiness check failed: {type(exc).__name__}: {exc}"
    body = orjson.dumps({"ready": bool(is_ready), "reason": reason})
    return Response(200 if is_ready else 503, JSON, body)


def route(
    method: str, path: str, accept: str | None, ready: Readiness, registry: CollectorRegistry = REGISTRY
) -> Response:
    """The answer to one request; the query string is ignored."""
    if method not in ("GET", "HEAD"):
        return Response(405, TEXT, b"method not allowed\n")
    path = path.split("?", 1)[0]
    if path == "/metrics":
        return metrics_response(accept, registry)
    if path == "/healthz":
        return health_response()
    if path == "/readyz":
        return ready_response(ready)
    return Response(404, TEXT, b"not found: try /metrics, /healthz or /readyz\n")


class OpsServer:
    """A running ops server; :meth:`close` stops it (also at interpreter exit, being a daemon thread)."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The bound port (the chosen one when started with port 0)."""
        port: int = self._server.server_address[1]
        return port

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> OpsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_ops_server(
    port: int, ready: Readiness, *, host: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY
) -> OpsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` from a daemon thread.

    Returns once the socket is bound (so a taken port raises ``OSError`` here, at start-up), and
    never blocks an asyncio loop afterwards. ``port=0`` picks a free port: see :attr:`OpsServer.port`.
    """

    class Handler(BaseHTTPRequestHandler):
        server_version = "tradewire-ops"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def do_POST(self) -> None:
            self._answer(send_body=True)

        def _answer(self, *, send_body: bool) -> None:
            response = route(self.command, self.path, self.headers.get("Accept"), ready, registry)
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if send_body:
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes every few seconds are not worth a log line each."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=f"ops-http-{port}", daemon=True)
    thread.start()
    return OpsServer(server, thread)
