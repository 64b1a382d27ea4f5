"""Recording what came of a pass's webhook deliveries: delivered, retried with capped backoff, or
given up; a failing webhook rests for the backoff of its failures in a row, and after `max_attempts`
of them everything waiting for it is given up."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sluice.events import metrics
from sluice.services.audit.webhook_sending import DeliveryOutcome
from sluice.store.db import transaction
from sluice.store.tables import Webhook, WebhookDelivery

if TYPE_CHECKING:
    from sluice.services.audit.webhook_delivery import DeliveryPolicy

log = logging.getLogger("sluice.webhooks")


def record_outcomes(
    factory: sessionmaker[Session], outcomes: list[DeliveryOutcome], now: datetime, policy: DeliveryPolicy
) -> None:
    """Record a pass's outcomes, each only if its lease is still ours, and rest failing webhooks."""
    with transaction(factory) as session:
        ids = [o.job.delivery_id for o in outcomes]
        rows = {
            row.id: row
            for row in session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .order_by(WebhookDelivery.id)
                .with_for_update()
            )
        }
        rests: dict[str, datetime] = {}
        exhausted: list[Webhook] = []
        for webhook_id, error in _webhook_results(outcomes):
            hook = session.get(Webhook, webhook_id, with_for_update=True)
            if hook is not None and error is not None:
                rests[hook.id] = _rest(hook, error, now, policy)
                if hook.failures >= policy.max_attempts:
                    exhausted.append(hook)
            elif hook is not None:
                hook.failures, hook.retry_at, hook.last_error = 0, None, None
        for outcome in outcomes:
            row = rows.get(outcome.job.delivery_id)
            if row is not None and row.next_attempt_at == outcome.job.lease:  # still ours
                _record_one(row, outcome, now, rests.get(outcome.job.webhook_id, now), policy)
        session.flush()
        for hook in exhausted:
            _give_up_waiting(session, hook, now)


def _record_one(
    row: WebhookDelivery,
    outcome: DeliveryOutcome,
    now: datetime,
    rest_until: datetime,
    policy: DeliveryPolicy,
) -> None:
    name = outcome.job.webhook
    if not outcome.tried:
        row.next_attempt_at = now  # due again once its webhook wakes; no attempt counted
        return
    row.attempts += 1
    row.last_status = outcome.status
    if outcome.error is None:
        row.delivered_at, row.next_attempt_at, row.last_error = now, None, None
        metrics.WEBHOOK_DELIVERIES.labels(name, "delivered").inc()
        return
    row.last_error = outcome.error[:500]
    if row.attempts >= policy.max_attempts:
        row.next_attempt_at, row.gave_up_at = None, now
        metrics.WEBHOOK_DELIVERIES.labels(name, "gave_up").inc()
        log.error(
            "webhook %s: gave up delivery %s (%s) after %d attempts: %s",
            name,
            row.id,
            outcome.job.topic,
            row.attempts,
            row.last_error,
        )
        return
    row.next_attempt_at = max(now + policy.retry_after(row.attempts), rest_until)
    metrics.WEBHOOK_DELIVERIES.labels(name, "failed").inc()
    log.warning(
        "webhook %s: delivery %s failed (attempt %d), retrying: %s",
        name,
        row.id,
        row.attempts,
        row.last_error,
    )


def _rest(hook: Webhook, error: str, now: datetime, policy: DeliveryPolicy) -> datetime:
    """A webhook that failed rests for the backoff of its failures in a row; returns until when."""
    hook.failures += 1
    hook.retry_at = now + policy.retry_after(hook.failures)
    hook.last_error = error[:500]
    return hook.retry_at


def _give_up_waiting(session: Session, hook: Webhook, now: datetime) -> None:
    """After `max_attempts` failures in a row, everything waiting for a webhook is given up."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id, WebhookDelivery.next_attempt_at.is_not(None))
        .values(
            next_attempt_at=None,
            gave_up_at=now,
            last_error=f"gave up: webhook {hook.name} failed {hook.failures} times in a row",
        )
        .execution_options(synchronize_session=False)
    )
    dropped = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if dropped:
        metrics.WEBHOOK_DELIVERIES.labels(hook.name, "gave_up").inc(dropped)
        log.error(
            "webhook %s failed %d times in a row: gave up %d waiting deliveries; last error: %s",
            hook.name,
            hook.failures,
            dropped,
            hook.last_error,
        )


def _webhook_results(outcomes: Iterable[DeliveryOutcome]) -> list[tuple[str, str | None]]:
    """Per webhook tried in this pass: None if it answered every time, else its failure."""
    results: dict[str, str | None] = {}
    for outcome in outcomes:
        if outcome.tried and results.get(outcome.job.webhook_id) is None:
            results[outcome.job.webhook_id] = outcome.error
    return sorted(results.items())
