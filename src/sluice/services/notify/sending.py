"""Claiming due notifications of one channel and sending them, outside any transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from sluice.runtime.tuning import Tuning
from sluice.services.grants.work_outcomes import backoff
from sluice.services.notify.channels import Channel, ChannelError, Notice, Subject
from sluice.services.notify.subjects import read_subject
from sluice.store.tables import Identity, Notification

log = logging.getLogger("sluice.notify")


@dataclass(frozen=True)
class NotifyPolicy:
    batch: int = 20  # notifications of one channel claimed per pass
    fan_out_batch: int = 500  # outbox rows fanned out per transaction
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(minutes=10)
    max_attempts: int = 12  # about an hour and a half of retries with the defaults
    # Longer than the slowest batch could take (each channel bounds its own calls), so no other worker
    # takes a notification over while it is being sent.
    lease: timedelta = timedelta(minutes=10)

    def retry_after(self, attempts: int) -> timedelta:
        return backoff(attempts, Tuning(backoff_base=self.backoff_base, backoff_cap=self.backoff_cap))


@dataclass(frozen=True)
class Job:
    notification_id: str
    lease: datetime
    notice: Notice


@dataclass(frozen=True)
class Outcome:
    job: Job
    tried: bool = True  # False: not sent in this pass because its channel had just failed
    reference: str | None = None
    error: str | None = None
    retryable: bool = True


def claim(
    session: Session, channel: str, now: datetime, policy: NotifyPolicy, public_url: str | None
) -> tuple[list[Job], list[Notification]]:
    """Claim a batch of due notifications of `channel` (pushing `next_attempt_at` to the lease).
    Returns the jobs, and the rows that can never be sent (what they were about, or who they were
    for, is gone), which the caller gives up."""
    lease = now + policy.lease
    rows = session.scalars(
        select(Notification)
        .where(Notification.channel == channel, Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.outbox_id, Notification.id)
        .limit(policy.batch)
        .options(selectinload(Notification.outbox))
        .with_for_update(skip_locked=True, of=Notification)
    ).all()
    subjects: dict[int, Subject | None] = {}
    jobs: list[Job] = []
    lost: list[Notification] = []
    for row in rows:
        if row.outbox_id not in subjects:
            subjects[row.outbox_id] = read_subject(session, row.outbox, public_url)
        notice = _notice(session, row, subjects[row.outbox_id])
        if notice is None:
            lost.append(row)
            continue
        row.next_attempt_at = lease
        jobs.append(Job(row.id, lease, notice))
    return jobs, lost


def _notice(session: Session, row: Notification, subject: Subject | None) -> Notice | None:
    if subject is None:
        return None
    person = None if row.role == "channel" else session.get(Identity, row.recipient)
    if row.role != "channel" and person is None:
        return None
    earlier = []
    if row.request_id is not None:
        earlier = list(
            session.scalars(
                select(Notification.reference)
                .where(
                    Notification.request_id == row.request_id,
                    Notification.recipient == row.recipient,
                    Notification.channel == row.channel,
                    Notification.reference.is_not(None),
                    Notification.id != row.id,
                )
                .order_by(Notification.created_at, Notification.id)
            )
        )
    return Notice(
        notification_id=row.id,
        topic=row.topic,
        event_id=row.outbox.event_id,
        channel=row.channel,
        recipient_email=person.email if person is not None else None,
        recipient_identity_id=person.id if person is not None else None,
        destination=row.recipient.split(":", 1)[1] if row.role == "channel" else None,
        role=row.role,
        subject=subject,
        earlier=[e for e in earlier if e],
        reason=row.outbox.payload.get("reason"),
    )


def send_all(channel: Channel, jobs: list[Job]) -> list[Outcome]:
    """Send each job; after one retryable failure nothing more goes to this channel in this pass
    (the channel rests), so a dead channel costs one timeout per rest, not one per message."""
    outcomes: list[Outcome] = []
    failed = False
    for job in jobs:
        if failed:
            outcomes.append(Outcome(job, tried=False))
            continue
        try:
            reference = channel.send(job.notice)
        except ChannelError as exc:
            outcomes.append(Outcome(job, error=str(exc) or type(exc).__name__, retryable=exc.retryable))
            failed = failed or exc.retryable
            continue
        except Exception as exc:  # a channel's own bug must not stop the others; retried like a failure
            log.exception("%s channel failed unexpectedly", channel.name)
            outcomes.append(Outcome(job, error=f"{type(exc).__name__}: {exc}"))
            failed = True
            continue
        outcomes.append(Outcome(job, reference=reference))
    return outcomes
