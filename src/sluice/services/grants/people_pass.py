"""The people pass, a duty of the worker: drain queued directory changes, re-evaluate the grants and
pending requests they concern (everyone when flows, inventory, tags or who is on call changed, and
periodically as a safety net), and reconcile automatic flows. Scheduled starts and "ends soon" warnings
are `grants/scheduled.py`'s, escalation is `requests/approvals.py`'s, feeds `directory/schedule_feeds.py`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.services.grants.automatic import reconcile_automatic
from sluice.services.grants.reevaluate import drain_people_changes, reevaluate
from sluice.services.requests.policy import load_flows
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.locks import Duty, try_duty_lock
from sluice.store.people_queries import next_shift_change, shifts_now
from sluice.store.people_tables import PeopleChange
from sluice.store.tables import AccessFlow, Integration, Resource
from sluice.store.targeting_tables import ResourceTag

log = logging.getLogger("sluice.worker")

FULL_PASS_EVERY = timedelta(minutes=5)
RETRY_WHEN_BUSY = timedelta(seconds=1)


# Built once: the worker asks for the fingerprint in every pass (`next_due`).
_CHANGE_MARKS = select(
    *(
        query.scalar_subquery()
        for query in (
            select(func.count()).select_from(AccessFlow),
            select(func.max(AccessFlow.updated_at)),
            select(func.count()).select_from(Resource),
            select(func.max(Resource.updated_at)),
            select(func.max(Integration.last_sync_at)),
            select(func.count()).select_from(ResourceTag),
            select(func.max(ResourceTag.updated_at)),
        )
    )
)
_QUEUED = select(PeopleChange.id).limit(1)


def _fingerprint(session: Session, now: datetime) -> tuple[object, ...]:
    """Changes to flows, inventory, tags or who is on call, seen from one pass to the next."""
    return (
        tuple(session.execute(_CHANGE_MARKS).one()),
        tuple(sorted((k, tuple(sorted(v))) for k, v in shifts_now(session, now).items())),
    )


class PeopleDuty:
    """The people pass of one worker. Several workers may share a PostgreSQL store: the pass runs in
    one transaction under the people-duty lock, and a worker that finds it held skips and tries again
    soon."""

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
        now = self.clock()
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
        """The earliest moment the pass is due: a shift change, queued changes, a change of flows,
        inventory, tags or shifts since the last pass, the periodic full pass, or the retry after
        another worker held it."""
        candidates = [next_shift_change(session, now), self._retry_at]
        # The locked pass is due at once for queued changes or a first pass, but not before the retry
        # moment when another worker held it: no busy loop while that worker runs it.
        locked_pass = max(now, self._retry_at) if self._retry_at else now
        candidates.append((self._last_full + FULL_PASS_EVERY) if self._last_full else locked_pass)
        if session.scalar(_QUEUED) is not None or _fingerprint(session, now) != self._fingerprint:
            candidates.append(locked_pass)
        present = [c for c in candidates if c is not None]
        return min(present) if present else None
