"""A Slack Web API stand-in on loopback, and a signer that sends Sluice what Slack sends.

The stand-in is a real HTTP server (`http.server` in a thread) answering the Web API methods Sluice
calls, at `/api/<method>`, the way Slack does: the bot token as `Authorization: Bearer`, arguments as a
query string, a form or JSON (whichever the SDK sends), every answer a JSON object with `ok`, and
Slack's error names (`not_authed`, `invalid_auth`, `users_not_found`, `channel_not_found`,
`message_not_found`, `invalid_blocks`, `ratelimited` with 429 and `Retry-After`). Blocks and views are
checked against Block Kit's shapes and limits; a message or view breaking one is refused with
`invalid_blocks` / `invalid_arguments`, as Slack refuses it. Every call is recorded.

`signed_post` posts a payload to Sluice signed exactly as Slack signs: form-encoded, the
`X-Slack-Request-Timestamp` header and `X-Slack-Signature: v0=<hex HMAC-SHA256 of
"v0:{timestamp}:{body}">` keyed with the app's signing secret."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

BOT_TOKEN = "xoxb-test-bot-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

TEXT_TYPES = {"plain_text", "mrkdwn"}
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100


class BlockKitError(ValueError):
    pass


def _check(condition: bool, where: str, what: str) -> None:
    if not condition:
        raise BlockKitError(f"{where}: {what}")


def check_text(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> None:
    _check(isinstance(obj, dict), where, "a text object is an object")
    kinds = {"plain_text"} if plain_only else TEXT_TYPES
    _check(obj.get("type") in kinds, where, f"type must be one of {sorted(kinds)}")
    text = obj.get("text")
    _check(isinstance(text, str) and 1 <= len(text) <= limit, where, f"text must be 1..{limit} characters")


def _check_element(element: Any, where: str) -> None:
    _check(isinstance(element, dict), where, "an element is an object")
    kind = element.get("type")
    if kind == "button":
        check_text(element.get("text"), f"{where}.text", 75, plain_only=True)
        _check(len(element.get("action_id", "")) <= 255, where, "action_id must be at most 255")
        _check(len(element.get("value", "")) <= 2000, where, "value must be at most 2000")
        _check(element.get("style") in (None, "primary", "danger"), where, "style must be primary or danger")
    elif kind == "plain_text_input":
        _check(0 < element.get("max_length", 3000) <= 3000, where, "max_length must be 1..3000")
    elif kind == "external_select":
        check_text(element.get("placeholder"), f"{where}.placeholder", 150, plain_only=True)
    elif kind == "radio_buttons":
        options = element.get("options")
        _check(isinstance(options, list) and 1 <= len(options) <= 10, where, "1..10 options")
        for j, option in enumerate(options):
            check_text(option.get("text"), f"{where}.options[{j}].text", 75)
            _check(0 < len(option.get("value", "")) <= 150, f"{where}.options[{j}]", "value must be 1..150")
        values = [o["value"] for o in options]
        _check(len(set(values)) == len(values), where, "option values must be unique")
        initial = element.get("initial_option")
        _check(initial is None or initial in options, where, "initial_option must be one of the options")
    else:
        raise BlockKitError(f"{where}: element type {kind!r} is not one Sluice should send")


def check_blocks(blocks: Any, limit: int, *, modal: bool = False) -> None:
    _check(isinstance(blocks, list) and len(blocks) <= limit, "blocks", f"at most {limit} blocks")
    ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        _check(isinstance(block, dict), where, "a block is an object")
        block_id = block.get("block_id")
        if block_id is not None:
            _check(len(block_id) <= 255 and block_id not in ids, where, "block_id unique, at most 255")
            ids.add(block_id)
        kind = block.get("type")
        if kind == "section":
            _check("text" in block or "fields" in block, where, "a section needs text or fields")
            if "text" in block:
                check_text(block["text"], f"{where}.text", 3000)
            fields = block.get("fields", [])
            _check(len(fields) <= 10, where, "at most 10 fields")
            for j, f in enumerate(fields):
                check_text(f, f"{where}.fields[{j}]", 2000)
        elif kind == "header":
            check_text(block.get("text"), f"{where}.text", 150, plain_only=True)
        elif kind == "context":
            elements = block.get("elements", [])
            _check(1 <= len(elements) <= 10, where, "1..10 elements")
            for j, e in enumerate(elements):
                check_text(e, f"{where}.elements[{j}]", 3000)
        elif kind == "actions":
            elements = block.get("elements", [])
            _check(1 <= len(elements) <= 25, where, "1..25 elements")
            for j, e in enumerate(elements):
                _check_element(e, f"{where}.elements[{j}]")
        elif kind == "input" and modal:
            check_text(block.get("label"), f"{where}.label", 2000, plain_only=True)
            _check_element(block.get("element"), f"{where}.element")
        elif kind != "divider":
            raise BlockKitError(f"{where}: block type {kind!r} is not allowed here")


def check_view(view: Any) -> None:
    _check(isinstance(view, dict) and view.get("type") == "modal", "view", "a modal")
    check_text(view.get("title"), "view.title", 24, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            check_text(view[key], f"view.{key}", 24, plain_only=True)
    _check(len(view.get("private_metadata", "")) <= 3000, "view", "private_metadata at most 3000")
    _check(len(view.get("callback_id", "")) <= 255, "view", "callback_id at most 255")
    check_blocks(view.get("blocks"), VIEW_BLOCKS, modal=True)


@dataclass
class Call:
    method: str
    args: dict[str, Any]


@dataclass
class SlackStandIn:
    port: int = 0
    token: str = BOT_TOKEN
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> user object
    channels: dict[str, str] = field(default_factory=dict)  # "#name" -> channel id
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (channel, ts) -> message
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[str, int, str]] = field(default_factory=list)  # (method, status, error), used once
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def add_user(self, user_id: str, email: str, *, name: str = "", deleted: bool = False) -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": name or email,
            "deleted": deleted,
            "profile": {"email": email},
        }

    def add_channel(self, name: str, channel_id: str) -> None:
        self.channels[name] = channel_id

    def fail_next(self, method: str, status: int, error: str) -> None:
        with self.lock:
            self.failures.append((method, status, error))

    def called(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c.args for c in self.calls if c.method == method]

    def in_channel(self, channel: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for (c, _), m in sorted(self.messages.items()) if c == channel]

    # The methods, each returning (status, body).
    def answer(self, method: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls.append(Call(method, args))
            for failure in self.failures:
                if failure[0] == method:
                    self.failures.remove(failure)
                    return failure[1], {"ok": False, "error": failure[2]}
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method"}
        try:
            return 200, handler(args)
        except BlockKitError as exc:
            return 200, {"ok": False, "error": "invalid_blocks", "errors": [str(exc)]}
        except KeyError as exc:
            return 200, {"ok": False, "error": "invalid_arguments", "errors": [f"missing {exc}"]}

    def _users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        for user in self.users.values():
            if user["profile"]["email"].lower() == str(args["email"]).lower():
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args["user"]))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args["users"])
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": "D" + user}}

    def _channel_id(self, channel: str) -> str | None:
        if channel.startswith("#"):
            return self.channels.get(channel)
        if channel.startswith("D") and channel[1:] in self.users:
            return channel
        return channel if channel in self.channels.values() else None

    def _message_args(self, args: dict[str, Any]) -> None:
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if blocks is not None:
            check_blocks(blocks, MESSAGE_BLOCKS)
            args["blocks"] = blocks
        _check(bool(args.get("text") or blocks), "message", "text or blocks are required")
        _check(len(args.get("text", "")) <= 40000, "message", "text at most 40000")

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(str(args["channel"]))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        self._message_args(args)
        ts = f"1712345678.{next(self._ts):06d}"
        with self.lock:
            self.messages[(channel, ts)] = {"text": args.get("text"), "blocks": args.get("blocks"), "ts": ts}
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args["channel"]), str(args["ts"]))
        self._message_args(args)
        with self.lock:
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key] = {"text": args.get("text"), "blocks": args.get("blocks"), "ts": key[1]}
        return {"ok": True, "channel": key[0], "ts": key[1]}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        _check(bool(args.get("text")), "message", "text is required")
        return {"ok": True, "message_ts": "1712345678.999999"}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args["view"]
        if isinstance(view, str):
            view = json.loads(view)
        check_view(view)
        args["view"] = view
        _check(bool(args.get("trigger_id")), "views.open", "trigger_id is required")
        return {"ok": True, "view": {"id": "V0001", **view}}


def _handler(standin: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            url = urlparse(self.path)
            args: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            kind = self.headers.get("Content-Type", "")
            if raw and kind.startswith("application/json"):
                args.update(json.loads(raw))
            elif raw:
                args.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
            auth = self.headers.get("Authorization", "")
            if "token" in args and not auth:
                auth = f"Bearer {args.pop('token')}"
            if not auth:
                status, body = 200, {"ok": False, "error": "not_authed"}
            elif not hmac.compare_digest(auth, f"Bearer {standin.token}"):
                status, body = 200, {"ok": False, "error": "invalid_auth"}
            elif not url.path.startswith("/api/"):
                status, body = 404, {"ok": False, "error": "unknown_method"}
            else:
                status, body = standin.answer(url.path.removeprefix("/api/"), args)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve

    return Handler


@contextmanager
def running_slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    standin.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed(
    fields: dict[str, str], *, timestamp: int, secret: str = SIGNING_SECRET
) -> tuple[bytes, dict[str, str]]:
    """A form body and the headers Slack sends with it."""
    body = urlencode(fields).encode()
    stamp = str(timestamp)
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature(secret, stamp, body),
    }


def interaction_body(
    payload: dict[str, Any], *, timestamp: int, secret: str = SIGNING_SECRET
) -> tuple[bytes, dict[str, str]]:
    """An interactive payload as Slack posts it: form-encoded, one `payload` field holding JSON."""
    return signed({"payload": json.dumps(payload)}, timestamp=timestamp, secret=secret)
