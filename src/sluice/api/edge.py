"""What every HTTP request meets before a route: a body-size limit, rate limits per token and per
address, a lockout after repeated bad tokens, and security headers on every answer.

The limits are per server process (servers share nothing but the store); behind a load balancer of N
servers a client gets up to N times the rate. The client address is the one the ASGI server reports:
run behind a reverse proxy with `--trusted-proxies` so that it is the client's, not the proxy's.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.api.problems import send_problem
from sluice.events.audit import acting_through, done_acting

API_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# JSON answers need nothing from the page; the docs page runs Swagger UI from /docs-assets only.
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
# Portal pages: scripts and styles from this server only (htmx is a file under /static), no inline script,
# forms posted back here only.
PORTAL_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
API_PREFIXES = ("/api/", "/scim/", "/auth/", "/openapi.json", "/metrics", "/healthz", "/readyz")
HSTS = (b"strict-transport-security", b"max-age=31536000")
MAX_TRACKED_KEYS = 50_000  # buckets kept per limiter; the least recently used go first
GUARDED = ("/api/", "/scim/", "/auth/")  # what the lockout and no-store cover
# Rate limited: the API, and sign-in (each unauthenticated start writes a row); not SCIM.
RATE_LIMITED = ("/api/", "/auth/")


def _positive(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = float(raw)
    if not value > 0:
        raise ValueError(f"{name} must be a positive number")
    return value


@dataclass(frozen=True)
class EdgeLimits:
    max_body_bytes: int = 1_048_576
    per_token_per_minute: float = 600
    per_address_per_minute: float = 1200
    # After this many bad tokens from one address within `lockout_seconds`, the address waits that long.
    failed_auth_limit: int = 20
    lockout_seconds: float = 300

    @classmethod
    def from_env(cls) -> EdgeLimits:
        return cls(
            max_body_bytes=int(_positive("SLUICE_MAX_BODY_BYTES", 1_048_576)),
            per_token_per_minute=_positive("SLUICE_RATE_PER_TOKEN", 600),
            per_address_per_minute=_positive("SLUICE_RATE_PER_ADDRESS", 1200),
            failed_auth_limit=int(_positive("SLUICE_FAILED_AUTH_LIMIT", 20)),
            lockout_seconds=_positive("SLUICE_LOCKOUT_SECONDS", 300),
        )


class TokenBuckets:
    """Token buckets by key: `take` answers 0 when the request may go, else the seconds to wait."""

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, per_minute / 6.0)  # ten seconds' worth at once
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._buckets) > MAX_TRACKED_KEYS:
            self._buckets.popitem(last=False)
        return wait


class FailureWindow:
    """Failures by key in a sliding window; `locked` answers the seconds left while over the limit."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, key: str) -> list[float]:
        cutoff = self.clock() - self.window
        recent = [t for t in self._failures.pop(key, []) if t > cutoff]
        if recent:
            self._failures[key] = recent
        return recent

    def add(self, key: str) -> None:
        self._failures[key] = [*self._recent(key), self.clock()][-self.limit :]
        if len(self._failures) > MAX_TRACKED_KEYS:
            self._failures.popitem(last=False)

    def locked(self, key: str) -> float:
        recent = self._recent(key)
        if len(recent) < self.limit:
            return 0.0
        return max(0.0, recent[0] + self.window - self.clock())


class _BoundedBody:
    """Hands the route the request body until it passes the limit, then ends it there."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.seen = 0
        self.overflowed = False

    async def receive(self) -> Message:
        if self.overflowed:
            return {"type": "http.request", "body": b"", "more_body": False}
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.overflowed = True
                return {"type": "http.request", "body": b"", "more_body": False}
        return message


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


def _token_key(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if not value or not value.lower().startswith(b"bearer "):
        return None
    return hashlib.sha256(value[7:].strip()).hexdigest()[:32]


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, *, limits: EdgeLimits, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.limits = limits
        self.by_token = TokenBuckets(limits.per_token_per_minute, clock)
        self.by_address = TokenBuckets(limits.per_address_per_minute, clock)
        self.failures = FailureWindow(limits.failed_auth_limit, limits.lockout_seconds, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        secure_send = self._with_headers(scope, send)
        address = (scope.get("client") or ("unknown", 0))[0]
        refusal = self._refusal(scope, address)
        if refusal is not None:
            wait, detail = refusal
            retry_after = str(max(1, math.ceil(wait)))
            await send_problem(
                secure_send,
                status=429,
                slug="too-many-requests",
                title="Too many requests",
                detail=detail,
                instance=path,
                headers={"Retry-After": retry_after},
            )
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limits.max_body_bytes:
            await self._too_large(secure_send, path)
            return
        body = _BoundedBody(receive, self.limits.max_body_bytes)
        replaced = False

        async def guarded_send(message: Message) -> None:
            # A body that went over the limit while the route read it: whatever the route answers
            # (it saw the body cut short), the caller gets 413.
            nonlocal replaced
            if message["type"] == "http.response.start":
                if message["status"] == 401:
                    self.failures.add(address)
                if body.overflowed:
                    replaced = True
                    await self._too_large(secure_send, path)
                    return
            if not replaced:
                await secure_send(message)

        acting = acting_through()
        try:
            await self.app(scope, body.receive, guarded_send)
        finally:
            done_acting(acting)

    def _refusal(self, scope: Scope, address: str) -> tuple[float, str] | None:
        """Bad-token lockout on the API, SCIM and sign-in; rate limits on the API and sign-in only (an
        identity provider provisioning thousands of people through SCIM must not be slowed to a
        person's pace)."""
        path = scope.get("path", "")
        if not path.startswith(GUARDED):
            return None
        locked = self.failures.locked(address)
        if locked:
            return locked, "too many requests with a bad token from this address; wait and try again"
        if not path.startswith(RATE_LIMITED):
            return None
        token = _token_key(scope)
        wait = self.by_token.take(token) if token else 0.0
        if wait:
            return wait, "this token sent too many requests; slow down and retry after the given time"
        wait = self.by_address.take(address)
        if wait:
            return wait, "this address sent too many requests; slow down and retry after the given time"
        return None

    async def _too_large(self, send: Send, path: str) -> None:
        detail = f"the request body is larger than {self.limits.max_body_bytes} bytes"
        await send_problem(
            send,
            status=413,
            slug="content-too-large",
            title="Content too large",
            detail=detail,
            instance=path,
        )

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        path = scope.get("path", "")
        docs = path == "/docs" or path.startswith("/docs-assets/")

        async def secure_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {key.lower() for key, _ in headers}
                extra = [h for h in API_HEADERS if h[0] not in names]
                extra.append((b"content-security-policy", _csp(path, docs)))
                # personal data and credentials: never kept by a cache (once, if a route set it too)
                if path.startswith(GUARDED) and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                if scope.get("scheme") == "https":
                    extra.append(HSTS)
                message = {**message, "headers": headers + extra}
            await send(message)

        return secure_send


def _csp(path: str, docs: bool) -> bytes:
    if docs:
        return DOCS_CSP
    return API_CSP if path.startswith(API_PREFIXES) else PORTAL_CSP
