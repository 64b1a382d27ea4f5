"""A worker's own small HTTP endpoint (`sluice worker --health-port N`), for a supervisor or a load
balancer's health checks and for Prometheus:

* `/healthz`: the process answers (liveness).
* `/readyz`: the store answers a query and the worker finished a pass recently (`stale_after`; a
  pass runs at least every `loop.IDLE_CEILING`), else 503 with the reasons.
* `/metrics`: this process's counters plus the store gauges, as `sluice server` serves them.

It runs in a daemon thread on the standard library's threading HTTP server: a worker has no web
stack, and starts faster without one."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from sluice.events.metrics import registry_with_store

log = logging.getLogger("sluice.worker")

STALE_AFTER = timedelta(seconds=120)  # four idle sleeps without a finished pass


class PassClock:
    """When the worker last finished a pass, on the monotonic clock (None: not yet)."""

    def __init__(self) -> None:
        self.last: float | None = None

    def mark(self) -> None:
        self.last = time.monotonic()

    def age(self) -> float | None:
        return None if self.last is None else time.monotonic() - self.last


class HealthServer:
    def __init__(
        self,
        *,
        engine: Engine,
        factory: sessionmaker[Session],
        clock: Callable[[], datetime],
        passes: PassClock,
        host: str = "127.0.0.1",
        port: int = 0,
        stale_after: timedelta = STALE_AFTER,
    ) -> None:
        self.engine = engine
        self.passes = passes
        self.stale_after = stale_after
        self.registry = registry_with_store(factory, clock)
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sluice-health", daemon=True)
        self._thread.start()
        log.info("worker health on port %d: /healthz, /readyz, /metrics", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def readiness(self) -> tuple[int, dict[str, Any]]:
        problems = []
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any store failure means not ready
            problems.append(f"the store does not answer ({type(exc).__name__})")
        age = self.passes.age()
        if age is None:
            problems.append("the worker has not finished a pass yet")
        elif age > self.stale_after.total_seconds():
            problems.append(f"the last finished pass was {age:.0f}s ago")
        body: dict[str, Any] = {"status": "unavailable" if problems else "ok"}
        body["last_pass_seconds_ago"] = None if age is None else round(age, 3)
        if problems:
            body["problems"] = problems
        return (503 if problems else 200), body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, "application/json", json.dumps({"status": "ok"}).encode())
                elif path == "/readyz":
                    status, body = health.readiness()
                    self._send(status, "application/json", json.dumps(body).encode())
                elif path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(health.registry))
                else:
                    message = {"status": "not found", "paths": ["/healthz", "/readyz", "/metrics"]}
                    self._send(404, "application/json", json.dumps(message).encode())

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the worker's own log

        return Handler
