"""The worker's duties on the people side, run once per pass before target work:

* start grants whose requested start has come (a request for a later start);
* notify the next approval tier of requests nobody acted on in time (escalation);
* write an "ends soon" event some minutes before a self-serve grant ends;
* drain queued directory changes and re-evaluate grants and pending requests;
* reconcile automatic flows when the directory, inventory, tags, flows or a shift changed, and
  periodically as a safety net.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.states import Desired, RequestStatus
from sluice.events.audit import Action, record
from sluice.services.approvals import escalate_due_requests, next_escalation
from sluice.services.automatic import reconcile_automatic
from sluice.services.connector_hub import ConnectorHub
from sluice.services.policy import load_flows
from sluice.services.reevaluate import drain_people_changes, reevaluate
from sluice.services.schedule_feeds import refresh_feeds
from sluice.store.db import transaction
from sluice.store.locks import Duty, try_duty_lock
from sluice.store.people_queries import next_shift_change, shifts_now
from sluice.store.people_tables import PeopleChange
from sluice.store.tables import AccessFlow, AccessRequest, Grant, Integration, Resource
from sluice.store.targeting_tables import ResourceTag

log = logging.getLogger("sluice.worker")

FULL_PASS_EVERY = timedelta(minutes=5)
WARN_BEFORE_END = timedelta(minutes=10)
RETRY_WHEN_BUSY = timedelta(seconds=1)


def start_scheduled_grants(session: Session, *, now: datetime) -> list[str]:
    """Grants of approved requests whose start time has come should now exist."""
    due = session.scalars(
        select(Grant)
        .join(AccessRequest, AccessRequest.id == Grant.request_id)
        .where(
            Grant.desired == Desired.PENDING,
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
            Grant.desired == Desired.ACTIVE,
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


def _fingerprint(session: Session, now: datetime) -> tuple[object, ...]:
    """Changes to flows, inventory, tags or who is on call, seen from one pass to the next."""
    return (
        tuple(session.execute(select(func.count(), func.max(AccessFlow.updated_at))).one()),
        tuple(session.execute(select(func.count(), func.max(Resource.updated_at))).one()),
        session.scalar(select(func.max(Integration.last_sync_at))),
        tuple(session.execute(select(func.count(), func.max(ResourceTag.updated_at))).one()),
        tuple(sorted((k, tuple(sorted(v))) for k, v in shifts_now(session, now).items())),
    )


class PeopleDuty:
    """The people duties of one worker. Several workers may share a PostgreSQL store: the row-level
    duties (scheduled starts, escalation, warnings) claim rows with `FOR UPDATE SKIP LOCKED`; the
    re-evaluation and automatic pass runs in one transaction under the people-duty lock."""

    def __init__(
        self, factory: sessionmaker[Session], *, hub: ConnectorHub, clock: Callable[[], datetime]
    ) -> None:
        self.factory = factory
        self.hub = hub
        self.clock = clock
        self._last_full: datetime | None = None
        self._fingerprint: tuple[object, ...] | None = None
        self._retry_at: datetime | None = None  # set when another worker held the pass

    def run(self) -> None:
        refresh_feeds(self.factory, clock=self.clock)
        now = self.clock()
        with transaction(self.factory) as session:
            flows = {f.name: f for f in load_flows(session)}
            start_scheduled_grants(session, now=now)
            escalate_due_requests(session, now=now, flows=flows)
            warn_ending_grants(session, now=now)
        with transaction(self.factory) as session:
            # Re-evaluation and automatic flows read what is held, then end and create grants: two
            # workers doing it at once would both create the same automatic grant. The second one
            # skips rather than waits, since the first is doing the very same pass; it keeps what it
            # owes (queued changes are drained only under the lock, its fingerprint and last full
            # pass stay as they were) and tries again in RETRY_WHEN_BUSY, so a change that arrived
            # while the other pass ran is acted on by one of them.
            if not try_duty_lock(session, Duty.PEOPLE):
                self._retry_at = now + RETRY_WHEN_BUSY
                log.debug("people pass skipped: another worker is running it")
                return
            fingerprint, everyone = self._reevaluate(session, now)
        self._retry_at = None  # what follows is remembered only once the pass is committed
        self._fingerprint = fingerprint
        if everyone:
            self._last_full = now

    def _reevaluate(self, session: Session, now: datetime) -> tuple[tuple[object, ...], bool]:
        """Drain queued changes, re-evaluate who they concern (everyone after a change of flows,
        inventory, tags or shifts, or periodically) and reconcile automatic flows. Returns the
        fingerprint seen and whether everyone was re-evaluated."""
        drained = drain_people_changes(session)
        fingerprint = _fingerprint(session, now)
        everyone = (
            fingerprint != self._fingerprint
            or self._last_full is None
            or now - self._last_full >= FULL_PASS_EVERY
            or (drained is not None and drained[0])
        )
        if everyone or drained is not None:
            flows = load_flows(session)  # read after the fingerprint: a later edit is seen next pass
            identity_ids = None if everyone or drained is None else drained[1]
            outcome = reevaluate(session, now=now, identity_ids=identity_ids, flows=flows)
            automatic = reconcile_automatic(session, hub=self.hub, now=now, flows=flows)
            log.debug("re-evaluated: %s; automatic: %s", outcome.as_dict(), automatic.as_dict())
        return fingerprint, everyone

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        """The earliest moment a people duty is due: an escalation, a shift change, a scheduled start,
        an "ends soon" warning, queued changes, or the periodic full pass."""
        flows = {f.name: f for f in load_flows(session)}
        first_unwarned_end = session.scalar(
            select(func.min(Grant.ends_at)).where(
                Grant.desired == Desired.ACTIVE, Grant.request_id.is_not(None), Grant.warned_at.is_(None)
            )
        )
        candidates = [
            next_escalation(session, now=now, flows=flows),
            next_shift_change(session, now),
            session.scalar(
                select(func.min(Grant.starts_at)).where(
                    Grant.desired == Desired.PENDING,
                    Grant.starts_at.is_not(None),
                    Grant.request_id.is_not(None),
                )
            ),
            first_unwarned_end - WARN_BEFORE_END if first_unwarned_end else None,
            self._retry_at,
        ]
        # The locked pass is due at once for queued changes or a first pass, but not before the retry
        # moment when another worker held it: no busy loop while that worker runs it.
        locked_pass = max(now, self._retry_at) if self._retry_at else now
        candidates.append((self._last_full + FULL_PASS_EVERY) if self._last_full else locked_pass)
        if session.scalar(select(func.count()).select_from(PeopleChange)):
            candidates.append(locked_pass)
        present = [c for c in candidates if c is not None]
        return min(present) if present else None
