"""Recording the target calls that worked, for a batch at once: the rows are read as columns (not
loaded as objects) and written with one prebuilt statement per operation, their events in bulk. An
expiry storm records hundreds of these a second; failures, rarer and with more to decide, are
`work_outcomes.record_failure`'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.states import Actual
from sluice.events import metrics
from sluice.events.audit import Action, NewEvent
from sluice.events.audit_batch import record_many
from sluice.services.grants.endings import GrantRow
from sluice.services.grants.work_outcomes import Outcome, grant_event
from sluice.store.bulk import Prepared, update_by_id
from sluice.store.tables import Grant

# What recording an outcome reads of a grant: a query to narrow (and lock) as the caller needs.
OUTCOME_COLUMNS = select(
    Grant.id,
    Grant.claimed_by,
    Grant.request_id,
    Grant.resource_path,
    Grant.permission,
    Grant.principal,
    Grant.ends_at,
    Grant.end_reason,
    Grant.revoke_requested_at,
    Grant.granted_at,
)


def _cleared(now: datetime) -> dict[str, Any]:
    """What both operations write: the claim and every trace of failing cleared."""
    return {
        "claimed_by": None,
        "claimed_until": None,
        "attempts": 0,
        "last_error": None,
        "next_attempt_at": None,
        "failing_since": None,
        "revoke_failed_at": None,
        "updated_at": now,
    }


def _update(*columns: str) -> Any:
    """The UPDATE of one operation: what both write, the new `actual`, then `columns` of its own."""
    return update_by_id(Grant, (*_cleared(datetime.min), "actual", *columns), key="grant_id")


_GRANTED = _update("connection", "granted_at")
_REVOKED = _update("revoked_at", "credentials")


def record_successes(session: Session, done: Sequence[tuple[GrantRow, Outcome]], now: datetime) -> None:
    """The rows (read with `OUTCOME_COLUMNS`, locked, claimed by this worker) say what the target
    calls did, and the audit says so too."""
    cleared = _cleared(now)
    granted, revoked, events = [], [], []
    for row, outcome in done:
        job = outcome.job
        if job.operation == "grant":
            # The target was told the end time read at claim; if an extension or a renewal moved it
            # meanwhile, the row stays to be applied again, so the target learns the new one.
            moved = row.ends_at != job.unit.ends_at
            granted.append(
                cleared
                | {
                    "grant_id": row.id,
                    "actual": (Actual.UNKNOWN if moved else Actual.ACTIVE).value,
                    "connection": outcome.connection,
                    "granted_at": row.granted_at or now,
                }
            )
        else:
            gone = {"grant_id": row.id, "actual": Actual.REVOKED.value, "revoked_at": now}
            revoked.append(cleared | gone | {"credentials": None})  # the secret is useless now; keep nothing
            # Every revoke counts, early ones too: from when it was decided until access is gone.
            decided = row.revoke_requested_at or row.ends_at
            if decided is not None and decided <= now:
                metrics.REVOCATION_LAG.labels(job.integration_name).observe((now - decided).total_seconds())
        events.append(_event(row, outcome, now))
    Prepared(session, _GRANTED, reuse=True).execute_many(granted)
    Prepared(session, _REVOKED, reuse=True).execute_many(revoked)
    record_many(session, events)


def _event(row: GrantRow, outcome: Outcome, now: datetime) -> NewEvent:
    revoke = outcome.job.operation == "revoke"
    return grant_event(
        row,
        now,
        Action.GRANT_REVOKED if revoke else Action.GRANT_ACTIVATED,
        reason=row.end_reason if revoke else None,
        grantee=outcome.job.unit.grantee_email,
        permission=row.permission,
        principal=row.principal,
        ends_at=row.ends_at.isoformat() if row.ends_at else None,
    )
