"""Sending webhook deliveries: the body, its HMAC signature and the POST, outside any transaction
(`webhook_delivery.py` claims the jobs, `webhook_outcomes.py` records what came of them)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime

import httpx

from sluice.events.audit import webhook_body
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


def signature(secret: str, body: bytes) -> str:
    """The `X-Sluice-Signature` header value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode_message(message: OutboxMessage) -> bytes:
    return json.dumps(webhook_body(message), separators=(",", ":"), sort_keys=True, default=str).encode()


def send_all(
    jobs: list[DeliveryJob], *, timeout_seconds: float, transport: httpx.BaseTransport | None
) -> list[DeliveryOutcome]:
    """POST each job in turn; after one failure, nothing more goes to that webhook in this pass."""
    outcomes: list[DeliveryOutcome] = []
    failed: dict[str, str] = {}  # webhook id -> why it failed in this pass
    with httpx.Client(timeout=timeout_seconds, follow_redirects=False, transport=transport) as client:
        for job in jobs:
            if job.webhook_id in failed:
                outcomes.append(DeliveryOutcome(job, f"not sent: {failed[job.webhook_id]}", tried=False))
                continue
            error = _send(client, job)
            if error is not None:
                failed[job.webhook_id] = error
            outcomes.append(DeliveryOutcome(job, error))
    return outcomes


def _send(client: httpx.Client, job: DeliveryJob) -> str | None:
    """POST one delivery; None when the receiver answered 2xx, else why not."""
    secret = os.environ.get(job.secret_env)
    if not secret:
        return f"environment variable {job.secret_env} (the signing key of webhook {job.webhook}) is not set"
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Sluice-Event": job.topic,
        "X-Sluice-Delivery": job.delivery_id,
        "X-Sluice-Signature": signature(secret, job.body),
    }
    try:
        response = client.post(job.url, content=job.body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.is_success:
        return None
    return f"HTTP {response.status_code} from {job.url}"
