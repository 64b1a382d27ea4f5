"""The worker's webhook duty: deliver the outbox to the webhooks declared in the config (declared
beside `services/audit/webhooks.py`, which keeps the webhooks themselves).

Each pass, in small transactions:

1. *Fan out*: outbox rows not handled yet become one `webhook_deliveries` row per webhook whose topics
   match (none: the outbox row is only marked handled), and get `delivered_at`.
2. *Claim* a small batch of due deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers
   never send one delivery at once), pushing `next_attempt_at` forward as a lease, and commit.
3. *Send* each outside any transaction: a JSON POST signed with HMAC-SHA256 of the body, with a short
   timeout. After one failure, nothing more is sent to that webhook in this pass.
4. *Record* the outcomes if the lease is still ours. A failed delivery is retried with capped
   exponential backoff and given up after `max_attempts`; the webhook itself rests (`retry_at`) for
   the backoff of its failures in a row, so a dead receiver costs at most one timeout per rest, and
   after `max_attempts` failures in a row everything waiting for it is given up.

Delivery is at least once: a worker dying between sending and recording sends again when its lease
lapses. Receivers de-duplicate on the `X-Sluice-Delivery` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from sluice.events import metrics
from sluice.events.audit import webhook_body
from sluice.runtime.tuning import Tuning
from sluice.services.audit.webhooks import topic_matches
from sluice.services.grants.work import backoff
from sluice.store.db import transaction
from sluice.store.tables import OutboxMessage, Webhook, WebhookDelivery
from sluice.store.types import new_id

log = logging.getLogger("sluice.webhooks")

USER_AGENT = "sluice-webhooks/1"


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


@dataclass(frozen=True)
class _Job:
    delivery_id: str
    webhook_id: str
    webhook: str
    url: str
    secret_env: str
    topic: str
    body: bytes
    lease: datetime


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    error: str | None = None  # None: delivered
    tried: bool = True  # False: not sent, because its webhook failed earlier in this pass


def signature(secret: str, body: bytes) -> str:
    """The `X-Sluice-Signature` header value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _encode(message: OutboxMessage) -> bytes:
    return json.dumps(webhook_body(message), separators=(",", ":"), sort_keys=True, default=str).encode()


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

    def run(self) -> int:
        """One pass: fan out, then send one batch of due deliveries. Returns how many were delivered.
        Whatever goes wrong here is logged and left for the next pass: webhooks never hold up the
        grant work that follows in the worker's pass."""
        try:
            self.fan_out(self.clock())
            jobs = self._claim(self.clock())
            if not jobs:
                return 0
            outcomes = self._send_all(jobs)
            self._record(outcomes, self.clock())
        except Exception:
            log.exception("webhook pass failed; retrying next pass")
            return 0
        return sum(1 for o in outcomes if o.error is None)

    def fan_out(self, now: datetime) -> int:
        """Turn outbox rows not handled yet into deliveries (one batch); returns how many rows."""
        with transaction(self.factory) as session:
            hooks = list(session.scalars(select(Webhook)))
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
                        session.add(
                            WebhookDelivery(
                                id=new_id("whd"),
                                outbox_id=row.id,
                                webhook_id=hook.id,
                                attempts=0,
                                next_attempt_at=now,
                                created_at=now,
                            )
                        )
                row.delivered_at = now
            return len(rows)

    def _claim(self, now: datetime) -> list[_Job]:
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
                    _Job(
                        delivery_id=row.id,
                        webhook_id=hook.id,
                        webhook=hook.name,
                        url=hook.url,
                        secret_env=hook.secret_env,
                        topic=row.outbox.topic,
                        body=_encode(row.outbox),
                        lease=lease,
                    )
                )
            return jobs

    def _send_all(self, jobs: list[_Job]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        failed: dict[str, str] = {}  # webhook id -> why it failed in this pass
        with httpx.Client(
            timeout=self.policy.timeout_seconds, follow_redirects=False, transport=self._transport
        ) as client:
            for job in jobs:
                if job.webhook_id in failed:
                    outcomes.append(_Outcome(job, f"not sent: {failed[job.webhook_id]}", tried=False))
                    continue
                error = _send(client, job)
                if error is not None:
                    failed[job.webhook_id] = error
                outcomes.append(_Outcome(job, error))
        return outcomes

    def _record(self, outcomes: list[_Outcome], now: datetime) -> None:
        with transaction(self.factory) as session:
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
                    rests[hook.id] = self._rest(hook, error, now)
                    if hook.failures >= self.policy.max_attempts:
                        exhausted.append(hook)
                elif hook is not None:
                    hook.failures, hook.retry_at, hook.last_error = 0, None, None
            for outcome in outcomes:
                row = rows.get(outcome.job.delivery_id)
                if row is not None and row.next_attempt_at == outcome.job.lease:  # still ours
                    self._record_one(row, outcome, now, rests.get(outcome.job.webhook_id, now))
            session.flush()
            for hook in exhausted:
                self._give_up_waiting(session, hook, now)

    def _record_one(
        self, row: WebhookDelivery, outcome: _Outcome, now: datetime, rest_until: datetime
    ) -> None:
        name = outcome.job.webhook
        if not outcome.tried:
            row.next_attempt_at = now  # due again once its webhook wakes; no attempt counted
            return
        row.attempts += 1
        if outcome.error is None:
            row.delivered_at, row.next_attempt_at, row.last_error = now, None, None
            metrics.WEBHOOK_DELIVERIES.labels(name, "delivered").inc()
            return
        row.last_error = outcome.error[:500]
        if row.attempts >= self.policy.max_attempts:
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
        row.next_attempt_at = max(now + self.policy.retry_after(row.attempts), rest_until)
        metrics.WEBHOOK_DELIVERIES.labels(name, "failed").inc()
        log.warning(
            "webhook %s: delivery %s failed (attempt %d), retrying: %s",
            name,
            row.id,
            row.attempts,
            row.last_error,
        )

    def _rest(self, hook: Webhook, error: str, now: datetime) -> datetime:
        """A webhook that failed rests for the backoff of its failures in a row; returns until when."""
        hook.failures += 1
        hook.retry_at = now + self.policy.retry_after(hook.failures)
        hook.last_error = error[:500]
        return hook.retry_at

    def _give_up_waiting(self, session: Session, hook: Webhook, now: datetime) -> None:
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

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        """The earliest moment this duty has work: now while outbox rows wait to be fanned out, else
        the next due delivery of an awake webhook, or the end of a resting webhook's rest."""
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.delivered_at.is_(None)).limit(1)):
            return now
        waiting = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.webhook_id == Webhook.id, WebhookDelivery.next_attempt_at.is_not(None))
            .exists()
        )
        candidates = [
            session.scalar(
                select(func.min(WebhookDelivery.next_attempt_at))
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(_awake(now))
            ),
            session.scalar(select(func.min(Webhook.retry_at)).where(Webhook.retry_at > now, waiting)),
        ]
        present = [c for c in candidates if c is not None]
        return min(present) if present else None


def _awake(now: datetime) -> ColumnElement[bool]:
    return or_(Webhook.retry_at.is_(None), Webhook.retry_at <= now)


def _webhook_results(outcomes: Iterable[_Outcome]) -> list[tuple[str, str | None]]:
    """Per webhook tried in this pass: None if it answered every time, else its failure."""
    results: dict[str, str | None] = {}
    for outcome in outcomes:
        if outcome.tried and results.get(outcome.job.webhook_id) is None:
            results[outcome.job.webhook_id] = outcome.error
    return sorted(results.items())


def _send(client: httpx.Client, job: _Job) -> str | None:
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
