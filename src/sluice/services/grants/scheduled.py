"""Grants on a timetable: start those whose requested start has come, and write an "ends soon" event
some minutes before a self-serve grant ends. Both claim their rows with `FOR UPDATE SKIP LOCKED`, so
several workers share the duty without doing anything twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.states import Desired, RequestStatus
from sluice.events.audit import Action, record
from sluice.store.db import transaction
from sluice.store.grant_states import grant_awaits_start, grant_should_be_active
from sluice.store.tables import AccessRequest, Grant

WARN_BEFORE_END = timedelta(minutes=10)


def start_scheduled_grants(session: Session, *, now: datetime) -> list[str]:
    """Grants of approved requests whose start time has come should now exist."""
    due = session.scalars(
        select(Grant)
        .join(AccessRequest, AccessRequest.id == Grant.request_id)
        .where(
            grant_awaits_start(),
            Grant.starts_at.is_not(None),
            Grant.starts_at <= now,
            AccessRequest.status == RequestStatus.APPROVED,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for grant in due:
        grant.desired = Desired.ACTIVE
        grant.next_attempt_at = None
        grant.updated_at = now
    return [g.id for g in due]


def warn_ending_grants(session: Session, *, now: datetime) -> list[str]:
    due = session.scalars(
        select(Grant)
        .where(
            grant_should_be_active(),
            Grant.request_id.is_not(None),
            Grant.warned_at.is_(None),
            Grant.ends_at.is_not(None),
            Grant.ends_at <= now + WARN_BEFORE_END,
            Grant.ends_at > now,
        )
        .with_for_update(skip_locked=True)  # one another worker is warning about is skipped
    ).all()
    for grant in due:
        grant.warned_at = now
        record(
            session,
            now=now,
            actor="sluice",
            action=Action.GRANT_ENDING_SOON,
            subject_type="grant",
            subject_id=grant.id,
            reason=f"access ends at {grant.ends_at:%Y-%m-%d %H:%M} UTC",
            request_id=grant.request_id,
            grantee=grant.identity.email,
            resource=grant.resource_path,
            ends_at=grant.ends_at.isoformat() if grant.ends_at else None,
        )
    return [g.id for g in due]


# Built once, one statement: the worker asks every pass.
_FIRST_START_AND_UNWARNED_END = select(
    select(func.min(Grant.starts_at))
    .where(grant_awaits_start(), Grant.starts_at.is_not(None), Grant.request_id.is_not(None))
    .scalar_subquery(),
    select(func.min(Grant.ends_at))
    .where(grant_should_be_active(), Grant.request_id.is_not(None), Grant.warned_at.is_(None))
    .scalar_subquery(),
)


class ScheduledGrants:
    """The worker's duty: scheduled starts and "ends soon" warnings, in one transaction."""

    def __init__(self, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def run(self) -> tuple[list[str], list[str]]:
        """Returns the grants started and the grants warned about."""
        now = self.clock()
        with transaction(self.factory) as session:
            return start_scheduled_grants(session, now=now), warn_ending_grants(session, now=now)

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        first_start, first_unwarned_end = session.execute(_FIRST_START_AND_UNWARNED_END).one()
        present = [m for m in (first_start, first_unwarned_end and first_unwarned_end - WARN_BEFORE_END) if m]
        return min(present) if present else None
