"""Recording what came of sending: delivered (with the channel's reference), retried with capped
exponential backoff, or given up (after `max_attempts`, or at once when the channel says retrying
cannot help). Each outcome is recorded only if the notification's lease is still ours."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.events import metrics
from sluice.services.notify.sending import Outcome
from sluice.store.tables import Notification

if TYPE_CHECKING:
    from sluice.services.notify.sending import NotifyPolicy

log = logging.getLogger("sluice.notify")


def record_outcomes(
    session: Session, outcomes: list[Outcome], now: datetime, rest_until: datetime, policy: NotifyPolicy
) -> None:
    ids = [o.job.notification_id for o in outcomes]
    rows = {
        row.id: row
        for row in session.scalars(
            select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id).with_for_update()
        )
    }
    for outcome in outcomes:
        row = rows.get(outcome.job.notification_id)
        if row is not None and row.next_attempt_at == outcome.job.lease:  # still ours
            _record_one(row, outcome, now, rest_until, policy)


def give_up(row: Notification, now: datetime, why: str) -> None:
    row.next_attempt_at, row.gave_up_at, row.last_error = None, now, why[:500]
    metrics.NOTIFICATIONS.labels(row.channel, "gave_up").inc()
    log.error("%s notification %s (%s) given up: %s", row.channel, row.id, row.topic, row.last_error)


def _record_one(
    row: Notification, outcome: Outcome, now: datetime, rest_until: datetime, policy: NotifyPolicy
) -> None:
    if not outcome.tried:
        row.next_attempt_at = max(now, rest_until)  # due again once its channel wakes; no attempt counted
        return
    row.attempts += 1
    if outcome.error is None:
        row.delivered_at, row.next_attempt_at, row.last_error = now, None, None
        row.reference = outcome.reference[:500] if outcome.reference else None
        metrics.NOTIFICATIONS.labels(row.channel, "sent").inc()
        return
    if not outcome.retryable:
        give_up(row, now, outcome.error)
        return
    if row.attempts >= policy.max_attempts:
        give_up(row, now, f"after {row.attempts} attempts: {outcome.error}")
        return
    row.last_error = outcome.error[:500]
    row.next_attempt_at = max(now + policy.retry_after(row.attempts), rest_until)
    metrics.NOTIFICATIONS.labels(row.channel, "failed").inc()
    log.warning(
        "%s notification %s failed (attempt %d), retrying: %s",
        row.channel,
        row.id,
        row.attempts,
        row.last_error,
    )
