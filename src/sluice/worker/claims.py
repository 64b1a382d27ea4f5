"""Claims die with their worker. A claim is a short lease that the worker holding it renews from a
heartbeat thread for as long as it lives, however long its target calls take; a worker that dies stops
renewing, and another worker takes its rows over within one lease. Each takeover is logged, counted and
written as an audit event, so an operator sees that a worker vanished mid-work."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from sluice import metrics
from sluice.events.audit import Action, record
from sluice.store.db import transaction
from sluice.store.tables import Grant

log = logging.getLogger("sluice.worker")


def renew_claims(factory: sessionmaker[Session], *, worker_id: str, now: datetime, lease: timedelta) -> int:
    """Push the lease of every row this worker holds to `now + lease`; returns how many it holds. A row
    another worker took over meanwhile is not this worker's any more and is left alone."""
    with transaction(factory) as session:
        result = session.execute(
            update(Grant)
            .where(Grant.claimed_by == worker_id, Grant.claimed_until.is_not(None))
            .values(claimed_until=now + lease)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def record_takeover(session: Session, grant: Grant, *, worker_id: str, now: datetime) -> None:
    """Called while claiming a row whose previous holder let its lease lapse (it died, or lost the
    store for longer than a lease): say so in the log, the metrics and the audit trail."""
    previous, lapsed = grant.claimed_by, grant.claimed_until
    metrics.CLAIM_TAKEOVERS.labels(grant.integration.name).inc()
    log.warning(
        "worker %s took over grant %s from %s, whose claim lapsed at %s",
        worker_id,
        grant.id,
        previous,
        lapsed.isoformat() if lapsed else None,
        extra={"grant_id": grant.id, "request_id": grant.request_id, "integration": grant.integration.name},
    )
    record(
        session,
        now=now,
        actor="sluice",
        action=Action.GRANT_CLAIM_TAKEN_OVER,
        subject_type="grant",
        subject_id=grant.id,
        reason=f"claim of worker {previous} lapsed at {lapsed.isoformat() if lapsed else 'an unknown time'}",
        request_id=grant.request_id,
        resource=grant.resource_path,
        integration=grant.integration.name,
        worker=worker_id,
        previous_worker=previous,
    )


class ClaimHeartbeat:
    """A thread that renews this worker's claims every third of the lease until stopped. A failed
    renewal (the store is away) is logged and tried again at the next beat."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        worker_id: str,
        clock: Callable[[], datetime],
        lease: timedelta,
    ) -> None:
        self.factory = factory
        self.worker_id = worker_id
        self.clock = clock
        self.lease = lease
        self.interval = lease.total_seconds() / 3
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> int:
        return renew_claims(self.factory, worker_id=self.worker_id, now=self.clock(), lease=self.lease)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sluice-claim-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # the store may be away for a moment; the next beat tries again
                log.warning("could not renew the claims of worker %s", self.worker_id, exc_info=True)
