"""The worker's webhook duty: deliver the outbox to the webhooks declared in the config (declared
beside `services/audit/webhooks.py`, which keeps the webhooks themselves).

Each pass, in small transactions:

1. *Fan out*: outbox rows not handled yet become one `webhook_deliveries` row per webhook whose topics
   match (none: the outbox row is only marked handled), and get `delivered_at`.
2. *Claim* a small batch of due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers
   never send one delivery at once), pushing `next_attempt_at` forward as a lease, and commit.
3. *Send* each outside any transaction: a JSON POST signed per Standard Webhooks
   (`webhook_sending.py`), with a short timeout. After one failure, nothing more is sent to that
   webhook in this pass.
4. *Record* the outcomes if the lease is still ours. A failed delivery is retried with capped
   exponential backoff and given up after `max_attempts`; the webhook itself rests (`retry_at`) for
   the backoff of its failures in a row, so a dead receiver costs at most one timeout per rest, and
   after `max_attempts` failures in a row everything waiting for it is given up.

Delivery is at least once: a worker dying between sending and recording sends again when its lease
lapses. Receivers de-duplicate on the `webhook-id` header (the delivery's id, the same on every retry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import BindParameter, ColumnElement, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from sluice.runtime.tuning import Tuning
from sluice.services.audit.webhook_outcomes import record_outcomes
from sluice.services.audit.webhook_sending import DeliveryJob, encode_message, send_all
from sluice.services.audit.webhooks import topic_matches
from sluice.services.grants.work_outcomes import backoff
from sluice.store.db import transaction
from sluice.store.tables import OutboxMessage, Webhook, WebhookDelivery
from sluice.store.types import new_id

log = logging.getLogger("sluice.webhooks")


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_seconds: float = 5.0  # per network step (connect, send, each read)
    batch: int = 20  # deliveries claimed per pass
    fan_out_batch: int = 500  # outbox rows fanned out per transaction
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(minutes=10)
    max_attempts: int = 20  # about two hours of retries with the defaults

    @property
    def lease(self) -> timedelta:
        """Longer than the slowest batch could take, so no other worker takes a delivery over."""
        return timedelta(seconds=self.batch * self.timeout_seconds * 2 + 60)

    def retry_after(self, attempts: int) -> timedelta:
        return backoff(attempts, Tuning(backoff_base=self.backoff_base, backoff_cap=self.backoff_cap))


def due_delivery(*, outbox_id: int, webhook_id: str, now: datetime) -> WebhookDelivery:
    """A new delivery of one outbox row to one webhook, due now (its `id` is the `webhook-id`)."""
    return WebhookDelivery(
        id=new_id("whd"),
        outbox_id=outbox_id,
        webhook_id=webhook_id,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


class WebhookDuty:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime],
        policy: DeliveryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.policy = policy or DeliveryPolicy()
        self._transport = transport
        self._listening = True  # whether some webhook existed at the last fan-out

    def run(self) -> int:
        """One pass: fan out, then send one batch of due deliveries. Returns how many were delivered.
        Whatever goes wrong here is logged and left for the next pass: webhooks never hold up the
        grant work that follows in the worker's pass."""
        try:
            self.fan_out(self.clock())
            if not self._listening:  # no webhook: no delivery can be due (they belong to webhooks)
                return 0
            jobs = self._claim(self.clock())
            if not jobs:
                return 0
            outcomes = send_all(jobs, timeout_seconds=self.policy.timeout_seconds, transport=self._transport)
            record_outcomes(self.factory, outcomes, self.clock(), self.policy)
        except Exception:
            log.exception("webhook pass failed; retrying next pass")
            return 0
        return sum(1 for o in outcomes if o.error is None)

    def fan_out(self, now: datetime) -> int:
        """Turn outbox rows not handled yet into deliveries (one batch); returns how many rows."""
        with transaction(self.factory) as session:
            hooks = list(session.scalars(select(Webhook)))
            self._listening = bool(hooks)
            if not hooks:  # nobody listens: everything written so far is handled, in one statement
                result = session.execute(
                    update(OutboxMessage).where(OutboxMessage.delivered_at.is_(None)).values(delivered_at=now)
                )
                return int(result.rowcount or 0)  # type: ignore[attr-defined]
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.delivered_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(self.policy.fan_out_batch)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                for hook in hooks:
                    if topic_matches(hook.topics, row.topic):
                        session.add(due_delivery(outbox_id=row.id, webhook_id=hook.id, now=now))
                row.delivered_at = now
            return len(rows)

    def _claim(self, now: datetime) -> list[DeliveryJob]:
        lease = now + self.policy.lease
        with transaction(self.factory) as session:
            rows = session.scalars(
                select(WebhookDelivery)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.next_attempt_at <= now, _awake(now))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.outbox_id, WebhookDelivery.id)
                .limit(self.policy.batch)
                .options(selectinload(WebhookDelivery.outbox), selectinload(WebhookDelivery.webhook))
                .with_for_update(skip_locked=True, of=WebhookDelivery)
            ).all()
            jobs = []
            for row in rows:
                row.next_attempt_at = lease
                hook = row.webhook
                jobs.append(
                    DeliveryJob(
                        delivery_id=row.id,
                        webhook_id=hook.id,
                        webhook=hook.name,
                        url=hook.url,
                        secret_env=hook.secret_env,
                        topic=row.outbox.topic,
                        body=encode_message(row.outbox),
                        lease=lease,
                    )
                )
            return jobs

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        """The earliest moment this duty has work: now while outbox rows wait to be fanned out, else
        the next due delivery of an awake webhook, or the end of a resting webhook's rest."""
        if session.scalar(_UNHANDLED) is not None:
            return now
        present = [c for c in session.execute(_NEXT_DELIVERY_OR_WAKING, {"now": now}).one() if c is not None]
        return min(present) if present else None


def _awake(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    return or_(Webhook.retry_at.is_(None), Webhook.retry_at <= now)


# Built once: the worker asks every pass. An outbox row not fanned out yet; the next due delivery of
# an awake webhook and the end of the rest of a resting one with deliveries waiting.
_UNHANDLED = select(OutboxMessage.id).where(OutboxMessage.delivered_at.is_(None)).limit(1)
_NEXT_DELIVERY_OR_WAKING = select(
    select(func.min(WebhookDelivery.next_attempt_at))
    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
    .where(_awake(bindparam("now")))
    .scalar_subquery(),
    select(func.min(Webhook.retry_at))
    .where(
        Webhook.retry_at > bindparam("now"),
        select(WebhookDelivery.id)
        .where(WebhookDelivery.webhook_id == Webhook.id, WebhookDelivery.next_attempt_at.is_not(None))
        .exists(),
    )
    .scalar_subquery(),
)
