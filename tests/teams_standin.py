"""A stand-in for a Teams Workflows webhook on loopback. It checks each POST the way the Workflows
trigger and Teams' card renderer would before posting it (a JSON message whose first attachment is an
Adaptive Card of a known version, whose body elements and actions are of known types, within the size
Teams accepts) and records what it accepted. It answers 202 like Workflows, or the statuses it is told,
or hangs to play a dead endpoint."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
ELEMENTS = {"TextBlock", "FactSet", "ColumnSet", "Container", "Image", "RichTextBlock", "ActionSet"}
# Outbound only: a card that calls back (Action.Submit, Action.Execute) cannot work from a webhook post.
ACTIONS = {"Action.OpenUrl", "Action.ShowCard", "Action.ToggleVisibility"}
MAX_BYTES = 28 * 1024  # what Teams accepts for one message


def card_problems(message: Any) -> list[str]:
    """What Teams would refuse in a Workflows message; empty when it would post it."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return ["the body is not a message"]
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["no attachments"]
    first = attachments[0]
    if not isinstance(first, dict) or first.get("contentType") != CARD_TYPE:
        return [f"attachments[0].contentType is not {CARD_TYPE}"]
    content = first.get("content")
    if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
        return ["attachments[0].content.type is not AdaptiveCard"]
    problems = []
    if not re.fullmatch(r"1\.[0-6]", str(content.get("version", ""))):
        problems.append(f"unsupported card version {content.get('version')!r}")
    body = content.get("body")
    if not isinstance(body, list) or not body:
        return [*problems, "the card has no body"]
    for index, element in enumerate(body):
        kind = element.get("type") if isinstance(element, dict) else None
        if kind not in ELEMENTS:
            problems.append(f"body[{index}] has unknown type {kind!r}")
        elif kind == "TextBlock" and not isinstance(element.get("text"), str):
            problems.append(f"body[{index}] TextBlock without text")
        elif kind == "FactSet":
            facts = element.get("facts")
            if not isinstance(facts, list) or not all(
                isinstance(f, dict) and isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                for f in facts
            ):
                problems.append(f"body[{index}] FactSet facts must be title/value texts")
    for index, action in enumerate(content.get("actions") or []):
        if not isinstance(action, dict) or action.get("type") not in ACTIONS:
            problems.append(
                f"actions[{index}] type {action.get('type') if isinstance(action, dict) else action!r}"
            )
        elif action["type"] == "Action.OpenUrl" and not str(action.get("url", "")).startswith("https://"):
            problems.append(f"actions[{index}] Action.OpenUrl needs an https url")
    return problems


@dataclass
class TeamsStandIn:
    port: int
    statuses: list[int] = field(default_factory=list)  # answered in order, then 202
    hang_seconds: float = 0.0
    cards: list[dict[str, Any]] = field(default_factory=list)  # accepted messages, in order
    refused: list[list[str]] = field(default_factory=list)
    posts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/workflows/db-team") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def texts(self) -> list[str]:
        """The headline of each accepted card."""
        return [m["attachments"][0]["content"]["body"][0]["text"] for m in self.cards]


def _handler(standin: TeamsStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with standin.lock:
                standin.posts += 1
                status = standin.statuses.pop(0) if standin.statuses else 202
            if standin.hang_seconds:
                time.sleep(standin.hang_seconds)
            problems = ["not JSON"]
            if self.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    message = json.loads(raw)
                    problems = card_problems(message)
                except ValueError:
                    pass
            if len(raw) > MAX_BYTES:
                problems.append("message too large")
            if problems:
                with standin.lock:
                    standin.refused.append(problems)
                self._answer(
                    400, json.dumps({"error": {"code": "BadRequest", "message": "; ".join(problems)}})
                )
                return
            if status == 202:
                with standin.lock:
                    standin.cards.append(message)
            self._answer(status, "" if status == 202 else json.dumps({"error": {"code": str(status)}}))

        def _answer(self, status: int, text: str) -> None:
            body = text.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a hung endpoint's test)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@contextmanager
def running_teams_standin() -> Iterator[TeamsStandIn]:
    standin = TeamsStandIn(port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    server.daemon_threads = True
    standin.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
