"""Sending webhook deliveries per Standard Webhooks: the body, its `webhook-id`, `webhook-timestamp`
and `webhook-signature` headers, and the POST, outside any transaction (`webhook_delivery.py` claims
the jobs, `webhook_outcomes.py` records what came of them, `webhook_signing.py` signs)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from sluice.events.audit import webhook_body
from sluice.services.audit.webhook_signing import BadSecret, sign, signing_key, unix_seconds
from sluice.store.tables import OutboxMessage

USER_AGENT = "sluice-webhooks/1"


@dataclass(frozen=True)
class DeliveryJob:
    delivery_id: str
    webhook_id: str
    webhook: str
    url: str
    secret_env: str
    topic: str
    body: bytes
    lease: datetime


@dataclass(frozen=True)
class DeliveryOutcome:
    job: DeliveryJob
    error: str | None = None  # None: delivered
    tried: bool = True  # False: not sent, because its webhook failed earlier in this pass
    status: int | None = None  # the HTTP status the receiver answered; None when none came


def wall_clock() -> datetime:
    """The moment an attempt goes out: the signed `webhook-timestamp`, which receivers compare with
    their own clocks, so it is the real time, never a test's or a schedule's."""
    return datetime.now(UTC)


def encode_message(message: OutboxMessage) -> bytes:
    return json.dumps(webhook_body(message), separators=(",", ":"), sort_keys=True, default=str).encode()


def send_all(
    jobs: list[DeliveryJob],
    *,
    timeout_seconds: float,
    transport: httpx.BaseTransport | None,
    clock: Callable[[], datetime] = wall_clock,
) -> list[DeliveryOutcome]:
    """POST each job in turn; after one failure, nothing more goes to that webhook in this pass."""
    outcomes: list[DeliveryOutcome] = []
    failed: dict[str, str] = {}  # webhook id -> why it failed in this pass
    with httpx.Client(timeout=timeout_seconds, follow_redirects=False, transport=transport) as client:
        for job in jobs:
            if job.webhook_id in failed:
                outcomes.append(DeliveryOutcome(job, f"not sent: {failed[job.webhook_id]}", tried=False))
                continue
            status, error = _send(client, job, clock)
            if error is not None:
                failed[job.webhook_id] = error
            outcomes.append(DeliveryOutcome(job, error, status=status))
    return outcomes


def _send(
    client: httpx.Client, job: DeliveryJob, clock: Callable[[], datetime]
) -> tuple[int | None, str | None]:
    """POST one delivery: the receiver's HTTP status (None when it never answered) and None when it
    answered 2xx, else why not. The delivery's id is the `webhook-id`, the same on every retry, so
    receivers can de-duplicate on it."""
    secret = os.environ.get(job.secret_env)
    if not secret:
        return None, (
            f"environment variable {job.secret_env} (the signing key of webhook {job.webhook}) is not set"
        )
    try:
        key = signing_key(secret, variable=job.secret_env)
    except BadSecret as exc:
        return None, exc.detail
    timestamp = unix_seconds(clock())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": job.delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id=job.delivery_id, timestamp=timestamp, body=job.body),
    }
    try:
        response = client.post(job.url, content=job.body, headers=headers)
    except httpx.HTTPError as exc:
        return None, (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if response.is_success:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code} from {job.url}"
