"""What an administrator sees of webhooks and does with them: the webhooks with their health, the
deliveries of one (newest first, by state), and a test ping (`webhook.test`) queued for one webhook.

A test ping is delivered by a worker like any event (the worker is where the webhook's secret
variable is set): it is an audit event whose outbox row is marked handled at once, so that the fan-out
gives it to no other webhook, with one delivery for the webhook tested, due now. Asking for it also
ends the webhook's rest, so the ping goes on the worker's next pass, whatever failed before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, selectinload

from sluice.domain.errors import NotFound
from sluice.events.audit import Action, record
from sluice.services.audit.webhook_delivery import due_delivery
from sluice.services.pages import Page, page_of
from sluice.store.tables import OutboxMessage, Webhook, WebhookDelivery


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    GIVEN_UP = "given_up"


def delivery_state(row: WebhookDelivery) -> DeliveryState:
    if row.delivered_at is not None:
        return DeliveryState.DELIVERED
    if row.gave_up_at is not None:
        return DeliveryState.GIVEN_UP
    return DeliveryState.PENDING


def _in_state(state: DeliveryState) -> ColumnElement[bool]:
    """The SQL twin of `delivery_state`."""
    if state is DeliveryState.DELIVERED:
        return WebhookDelivery.delivered_at.is_not(None)
    if state is DeliveryState.GIVEN_UP:
        return WebhookDelivery.delivered_at.is_(None) & WebhookDelivery.gave_up_at.is_not(None)
    return WebhookDelivery.delivered_at.is_(None) & WebhookDelivery.gave_up_at.is_(None)


@dataclass(frozen=True)
class WebhookHealth:
    webhook: Webhook
    counts: dict[DeliveryState, int]


def list_webhooks(session: Session, *, limit: int, offset: int) -> Page[WebhookHealth]:
    """Webhooks by name, each with how many of its deliveries are in each state."""
    page = page_of(session, select(Webhook).order_by(Webhook.name), limit, offset)
    ids = [hook.id for hook in page.items]
    counted = session.execute(
        select(
            WebhookDelivery.webhook_id,
            *(func.sum(case((_in_state(state), 1), else_=0)) for state in DeliveryState),
        )
        .where(WebhookDelivery.webhook_id.in_(ids))
        .group_by(WebhookDelivery.webhook_id)
    ).all()
    counts = {
        row[0]: dict(zip(DeliveryState, (int(n or 0) for n in row[1:]), strict=True)) for row in counted
    }
    empty = dict.fromkeys(DeliveryState, 0)
    return Page([WebhookHealth(hook, counts.get(hook.id, empty)) for hook in page.items], page.total)


def webhook_named(session: Session, name: str, *, lock: bool = False) -> Webhook:
    query = select(Webhook).where(Webhook.name == name)
    hook = session.scalar(query.with_for_update() if lock else query)
    if hook is None:
        raise NotFound(f"no webhook {name!r}")
    return hook


def list_deliveries(
    session: Session, *, name: str, state: DeliveryState | None, limit: int, offset: int
) -> Page[WebhookDelivery]:
    """One webhook's deliveries, newest first."""
    hook = webhook_named(session, name)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .options(selectinload(WebhookDelivery.outbox), selectinload(WebhookDelivery.webhook))
    )
    if state is not None:
        query = query.where(_in_state(state))
    return page_of(session, query, limit, offset)


def delivery_of(session: Session, *, name: str, delivery_id: str) -> WebhookDelivery:
    hook = webhook_named(session, name)
    row = session.get(WebhookDelivery, delivery_id)
    if row is None or row.webhook_id != hook.id:
        raise NotFound(f"no delivery {delivery_id!r} of webhook {name!r}")
    return row


def queue_test(session: Session, *, name: str, actor: str, now: datetime) -> WebhookDelivery:
    """A `webhook.test` event for this webhook only, due now; the caller wakes the workers."""
    hook = webhook_named(session, name, lock=True)
    event = record(
        session,
        now=now,
        actor=actor,
        action=Action.WEBHOOK_TEST,
        subject_type="webhook",
        subject_id=hook.name,
        reason=f"test ping asked by {actor}",
        name=hook.name,
    )
    session.flush()
    outbox = session.scalars(select(OutboxMessage).where(OutboxMessage.event_id == event.id)).one()
    outbox.delivered_at = now  # handled: the fan-out gives it to no other webhook
    delivery = due_delivery(outbox_id=outbox.id, webhook_id=hook.id, now=now)
    session.add(delivery)
    hook.retry_at = None  # asked for now: the rest ends
    session.flush()
    return delivery
