"""What a grant's target work produced and how it is written down: the job a worker claimed, the
outcome of its target call, and recording that outcome on the row and in the audit (with backoff and
the `revoke_failed` mark for revokes that keep failing). Claiming and running are `work.py`'s."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from sluice.connectors.base import AccessUnit, Connector
from sluice.domain.errors import SluiceError, TargetError
from sluice.events.audit import Action, NewEvent, new_event, record_event
from sluice.runtime.tuning import Tuning
from sluice.services.grants.endings import GrantRow, end_grants
from sluice.store.tables import Grant

log = logging.getLogger("sluice.worker")  # what the worker does, under the name operators filter on


@dataclass(frozen=True)
class Job:
    grant_id: str
    operation: str  # "grant" or "revoke"
    integration_id: str
    integration_name: str
    unit: AccessUnit
    retry: bool = False  # the row failed before
    request_id: str | None = None
    connector: Connector | None = field(default=None, compare=False)  # built at claim time


@dataclass(frozen=True)
class Outcome:
    """What a target call did: the connection details of a grant, or the error."""

    job: Job
    connection: dict[str, Any] | None = None
    error: SluiceError | None = None


def _context(job: Job) -> dict[str, str | None]:
    """What a structured log line about a job carries (never the unit's secret)."""
    return {
        "grant_id": job.grant_id,
        "request_id": job.request_id,
        "integration": job.integration_name,
        "operation": job.operation,
    }


def grant_event(
    grant: Grant | GrantRow, now: datetime, action: Action, *, reason: str | None, **details: Any
) -> NewEvent:
    """An event about one grant's target work, by Sluice, naming its request and resource."""
    return new_event(
        now=now,
        actor="sluice",
        action=action,
        subject_type="grant",
        subject_id=grant.id,
        reason=reason,
        request_id=grant.request_id,
        resource=grant.resource_path,
        **details,
    )


def _audit(
    session: Session, grant: Grant, now: datetime, action: Action, *, reason: str | None, **details: Any
) -> None:
    record_event(session, grant_event(grant, now, action, reason=reason, **details))


def log_outcome(outcome: Outcome, attempts: int | None) -> None:
    job = outcome.job
    if outcome.error is None:
        log.info("%s done for grant %s", job.operation, job.grant_id, extra=_context(job))
        return
    log.warning(
        "%s failed for grant %s (attempt %s): %s",
        job.operation,
        job.grant_id,
        attempts,
        outcome.error.detail,
        extra={**_context(job), "attempts": attempts},
    )


def backoff(attempts: int, tuning: Tuning | None = None) -> timedelta:
    """Capped exponential backoff with a little jitter, so retries of many rows spread out."""
    tuning = tuning or Tuning()
    base, cap = tuning.backoff_base.total_seconds(), tuning.backoff_cap.total_seconds()
    seconds = min(cap, base * 2 ** max(0, attempts - 1))
    jitter = secrets.randbelow(250) / 1000 * seconds
    return timedelta(seconds=seconds * 0.875 + jitter)


def record_failure(session: Session, grant: Grant, outcome: Outcome, now: datetime, tuning: Tuning) -> None:
    """A target call that failed: back off, audit, and give up on what can never be granted."""
    job, error = outcome.job, outcome.error
    assert error is not None
    retryable = not isinstance(error, TargetError) or error.retryable
    if grant.attempts == 0 or grant.failing_since is None:
        grant.failing_since = now  # a new operation started failing
    grant.attempts += 1
    grant.last_error = error.detail[:2000]
    grant.next_attempt_at = now + backoff(grant.attempts, tuning)
    grant.updated_at = now
    action = Action.GRANT_FAILED if job.operation == "grant" else Action.GRANT_REVOKE_FAILED
    _audit(
        session,
        grant,
        now,
        action,
        reason=error.detail[:500],
        attempts=grant.attempts,
        error=error.detail[:500],
    )
    if job.operation == "grant" and not retryable:
        # It can never be granted: stop trying, and clean up whatever part of it exists.
        end_grants(
            session,
            [grant],
            now=now,
            actor="sluice",
            action=Action.GRANT_REVOKE_REQUESTED,
            reason=f"could not be granted: {error.detail[:300]}",
        )
        grant.next_attempt_at = None
    elif job.operation == "revoke":
        _maybe_declare_stuck(session, grant, now, error, tuning)


def _maybe_declare_stuck(
    session: Session, grant: Grant, now: datetime, error: SluiceError, tuning: Tuning
) -> None:
    """A revoke failing for longer than the window becomes `revoke_failed`, once, with an event (and
    its webhook). Nothing stops: the row keeps being retried at the capped backoff."""
    since = grant.failing_since or now
    if grant.revoke_failed_at is not None or now - since < tuning.revoke_failed_after:
        return
    grant.revoke_failed_at = now
    _audit(
        session,
        grant,
        now,
        Action.GRANT_REVOKE_STUCK,
        reason=f"revoke failing since {since.isoformat()}; still retrying",
        grantee=grant.identity.email,
        principal=grant.principal,
        integration=grant.integration.name,
        attempts=grant.attempts,
        error=error.detail[:500],
        state="revoke_failed",
    )
    log.error("grant %s: revoke failed for longer than the window; still retrying", grant.id)
