"""Webhooks (admin): their health, their deliveries, and a test ping a worker sends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sluice.api.auth import AdminDep, RuntimeDep
from sluice.api.params import IdPath, Limit, Offset
from sluice.api.webhook_schemas import (
    DeliveryPage,
    DeliveryView,
    WebhookNamePath,
    WebhookPage,
    delivery_view,
    webhook_view,
)
from sluice.services.audit import webhook_admin
from sluice.services.audit.webhook_admin import DeliveryState
from sluice.store.db import transaction

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.get("", response_model=WebhookPage, summary="List webhooks and their health (admin)")
def list_webhooks(
    runtime: RuntimeDep, caller: AdminDep, limit: Limit = 100, offset: Offset = 0
) -> WebhookPage:
    with transaction(runtime.factory) as session:
        page = webhook_admin.list_webhooks(session, limit=limit, offset=offset)
        return WebhookPage(items=[webhook_view(h) for h in page.items], total=page.total)


@router.get(
    "/{name}/deliveries",
    response_model=DeliveryPage,
    summary="A webhook's deliveries, newest first (admin)",
)
def list_deliveries(
    name: WebhookNamePath,
    runtime: RuntimeDep,
    caller: AdminDep,
    state: Annotated[DeliveryState | None, Query(description="Only deliveries in this state")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DeliveryPage:
    with transaction(runtime.factory) as session:
        page = webhook_admin.list_deliveries(session, name=name, state=state, limit=limit, offset=offset)
        return DeliveryPage(items=[delivery_view(d) for d in page.items], total=page.total)


@router.get("/{name}/deliveries/{delivery_id}", response_model=DeliveryView, summary="One delivery (admin)")
def get_delivery(
    name: WebhookNamePath, delivery_id: IdPath, runtime: RuntimeDep, caller: AdminDep
) -> DeliveryView:
    with transaction(runtime.factory) as session:
        return delivery_view(webhook_admin.delivery_of(session, name=name, delivery_id=delivery_id))


@router.post(
    "/{name}/test",
    status_code=202,
    response_model=DeliveryView,
    summary="Queue a webhook.test ping to this webhook, sent by a worker at once (admin)",
)
def test_webhook(name: WebhookNamePath, runtime: RuntimeDep, caller: AdminDep) -> DeliveryView:
    with transaction(runtime.factory) as session:
        delivery = webhook_admin.queue_test(
            session, name=name, actor=caller.identity.email, now=runtime.clock()
        )
        runtime.notify_work(session)
        session.refresh(delivery, ["outbox", "webhook"])
        return delivery_view(delivery)
