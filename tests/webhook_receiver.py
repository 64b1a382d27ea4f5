"""A real HTTP webhook receiver for tests: `http.server` in a thread on a free port. It records every
POST, checks its Standard Webhooks signature as it arrives with the spec's own library
(`standardwebhooks`), and answers with the statuses it is told (then 200), or hangs to play a dead
receiver."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from sluice.store.db import transaction
from sluice.store.tables import Webhook

SIGNING_KEY_ENV = "HOOK_SECRET"  # the variable test webhooks name
SIGNING_KEY = "whsec_" + base64.b64encode(bytes(range(32))).decode()  # a Standard Webhooks secret


def verification_error(secret: str, body: bytes, headers: dict[str, str]) -> str | None:
    """None when `standardwebhooks` accepts the delivery signed with `secret`, else why not."""
    try:
        StandardWebhook(secret).verify(body, headers)
    except WebhookVerificationError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    rejected: str | None = None  # why the signature check failed on arrival (with SIGNING_KEY)

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def event(self) -> str:
        """The event type, from the verified body's envelope."""
        return str(self.json["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.json["data"]
        return data

    @property
    def delivery_id(self) -> str:
        return self.headers["webhook-id"]

    def signed_with(self, secret: str) -> bool:
        return verification_error(secret, self.body, self.headers) is None


@dataclass
class Receiver:
    port: int
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    hang_seconds: float = 0.0  # sleep before answering (a hung receiver)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def events(self, path: str = "/hook") -> list[str]:
        return [r.event for r in self.at(path)]


def add_webhook(
    factory: sessionmaker[Session],
    name: str,
    url: str,
    *,
    topics: list[str] | None = None,
    secret_env: str = SIGNING_KEY_ENV,
) -> str:
    """A webhook row, as `sluice apply` writes it."""
    with transaction(factory) as session:
        now = datetime.now(UTC)
        hook = Webhook(
            id=f"wh_{name}",
            name=name,
            url=url,
            secret_env=secret_env,
            topics=topics or ["*"],
            created_at=now,
            updated_at=now,
        )
        session.add(hook)
        return hook.id


def _handler(receiver: Receiver, stop: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers.items())
            rejected = verification_error(SIGNING_KEY, body, headers)
            with receiver.lock:
                receiver.received.append(Received(self.path, headers, body, rejected))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            if receiver.hang_seconds:
                stop.wait(receiver.hang_seconds)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver(port=0)
    stop = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver, stop))
    server.daemon_threads = True
    receiver.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
