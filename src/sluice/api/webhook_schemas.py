"""Shapes of the webhook endpoints (admin) and the mapping from their rows. A webhook's secret is
never among them: only the name of the variable that holds it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Path
from pydantic import BaseModel, Field

from sluice.domain.text import Text
from sluice.services.audit import webhooks
from sluice.services.audit.webhook_admin import DeliveryState, WebhookHealth, delivery_state
from sluice.store.tables import WebhookDelivery

WebhookNamePath = Annotated[
    str,
    Path(description="A webhook's name"),
    Text(
        max_length=webhooks.MAX_NAME,
        min_length=1,
        pattern=webhooks.NAME_PATTERN,
        pattern_words=webhooks.NAME_WORDS,
    ),
]


class DeliveryCounts(BaseModel):
    pending: int
    delivered: int
    given_up: int


class WebhookView(BaseModel):
    name: str
    url: str
    host: str = Field(description="The URL's host")
    topics: list[str] = Field(description="Glob patterns over event types")
    secret_env: str = Field(description="The environment variable holding its secret (never the secret)")
    source: str
    failures: int = Field(description="Failures in a row; 0 once a delivery succeeds")
    resting_until: datetime | None = Field(description="Nothing is sent to it before this (it failed)")
    last_error: str | None
    deliveries: DeliveryCounts


class WebhookPage(BaseModel):
    items: list[WebhookView]
    total: int


class DeliveryView(BaseModel):
    id: str = Field(description="The delivery's id: its `webhook-id` header, the same on every retry")
    webhook: str
    type: str = Field(description="The event type")
    event_id: int = Field(description="The audit event delivered")
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When it is tried next, while pending")
    delivered_at: datetime | None
    gave_up_at: datetime | None
    last_status: int | None = Field(
        description="The HTTP status the receiver answered the last attempt with; null when none came"
    )
    last_error: str | None


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    total: int


def webhook_view(health: WebhookHealth) -> WebhookView:
    hook = health.webhook
    return WebhookView(
        name=hook.name,
        url=hook.url,
        host=urlsplit(hook.url).hostname or "",
        topics=list(hook.topics),
        secret_env=hook.secret_env,
        source=hook.source,
        failures=hook.failures,
        resting_until=hook.retry_at,
        last_error=hook.last_error,
        deliveries=DeliveryCounts(**{state.value: n for state, n in health.counts.items()}),
    )


def delivery_view(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        webhook=row.webhook.name,
        type=row.outbox.topic,
        event_id=row.outbox.event_id,
        state=delivery_state(row),
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        gave_up_at=row.gave_up_at,
        last_status=row.last_status,
        last_error=row.last_error,
    )
