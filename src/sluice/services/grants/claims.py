"""Claims on grant rows, which die with their worker: the holder renews its short lease from a
heartbeat thread (`worker/claims.py`) for as long as it lives, and a row whose lease lapsed is taken over
by the next worker to claim it, with a log line, a metric and an audit event. What taking a claim
reads and writes is here too; which rows to take, and the jobs they make, are `work.py`'s."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from sluice.events import metrics
from sluice.events.audit import Action, record
from sluice.store.bulk import Prepared, update_by_id
from sluice.store.db import transaction
from sluice.store.grant_states import grant_needs_work
from sluice.store.tables import Grant, Identity, Integration

log = logging.getLogger("sluice.worker")


def release_stale_claims(factory: sessionmaker[Session], now: datetime) -> int:
    """Claims whose lease lapsed are free again (the claim query also ignores them; this tidies up)."""
    with transaction(factory) as session:
        result = session.execute(
            update(Grant)
            .where(Grant.claimed_until.is_not(None), Grant.claimed_until <= now)
            .values(claimed_by=None, claimed_until=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release_claims(factory: sessionmaker[Session], *, worker_id: str) -> int:
    """Free every row this worker holds, when it holds none on purpose (no call of its is running):
    their outcomes were lost, and the rows are due again at once. Returns how many were freed."""
    with transaction(factory) as session:
        result = session.execute(
            update(Grant).where(Grant.claimed_by == worker_id).values(claimed_by=None, claimed_until=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


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


class TakenRow(Protocol):
    """What a takeover reads of the row it takes (a claim's row of columns)."""

    id: str
    claimed_by: str | None
    claimed_until: datetime | None
    request_id: str | None
    resource_path: str


def record_takeover(
    session: Session, row: TakenRow, *, integration: str, worker_id: str, now: datetime
) -> None:
    """Called while claiming a row whose previous holder let its lease lapse (it died, or lost the
    store for longer than a lease): say so in the log, the metrics and the audit trail."""
    previous, lapsed = row.claimed_by, row.claimed_until
    metrics.CLAIM_TAKEOVERS.labels(integration).inc()
    log.warning(
        "worker %s took over grant %s from %s, whose claim lapsed at %s",
        worker_id,
        row.id,
        previous,
        lapsed.isoformat() if lapsed else None,
        extra={"grant_id": row.id, "request_id": row.request_id, "integration": integration},
    )
    record(
        session,
        now=now,
        actor="sluice",
        action=Action.GRANT_CLAIM_TAKEN_OVER,
        subject_type="grant",
        subject_id=row.id,
        reason=f"claim of worker {previous} lapsed at {lapsed.isoformat() if lapsed else 'an unknown time'}",
        request_id=row.request_id,
        resource=row.resource_path,
        integration=integration,
        worker=worker_id,
        previous_worker=previous,
    )


# Taking claims (`work.GrantWork.claim`), built once with the moment bound at execution: the worker
# claims in every pass. A claim reads columns, not objects: the integrations with work due, then per
# integration the rows it takes (locked, skipping rows another worker is claiming), and writes every
# claimed row with one prebuilt statement.
INTEGRATIONS_WITH_WORK = (
    select(Integration)
    .where(Integration.id.in_(select(Grant.integration_id).where(grant_needs_work(bindparam("now")))))
    .order_by(Integration.id)
)
CLAIMABLE = (
    select(
        Grant.id,
        Grant.claimed_by,
        Grant.claimed_until,
        Grant.desired,
        Grant.actual,
        Grant.credentials,
        Grant.attempts,
        Grant.request_id,
        Grant.principal,
        Grant.resource_type,
        Grant.resource_path,
        Grant.permission,
        Grant.ends_at,
        Identity.email,
    )
    .join(Identity, Identity.id == Grant.identity_id)
    .where(grant_needs_work(bindparam("now")), Grant.integration_id == bindparam("integration_id"))
    .order_by(Grant.next_attempt_at.is_not(None), Grant.next_attempt_at, Grant.ends_at)
    .limit(bindparam("take"))
    .with_for_update(skip_locked=True, of=Grant)
)
_CLAIMED = update_by_id(Grant, ("claimed_by", "claimed_until", "actual", "credentials"), key="grant_id")


def write_claims(session: Session, claimed: Sequence[dict[str, Any]]) -> None:
    """Write the claims taken (`grant_id`, `claimed_by`, `claimed_until`, and the `actual` and
    `credentials` a first grant records before its call), in one statement."""
    Prepared(session, _CLAIMED, reuse=True).execute_many(claimed)
