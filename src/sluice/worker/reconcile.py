"""Claim grant rows whose desired state differs from the actual one, act on the target, record the
outcome. A crash at any point leaves a row that still differs and is picked again after its claim
lapses, so every connector operation is idempotent."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import AccessUnit
from sluice.domain.errors import SluiceError, TargetError
from sluice.domain.states import Actual, Desired
from sluice.events.audit import Action, record
from sluice.services.connector_hub import ConnectorHub
from sluice.services.grants import end_grants
from sluice.services.secrets import SecretBox
from sluice.store.db import transaction
from sluice.store.queries import grant_needs_work
from sluice.store.tables import Grant

log = logging.getLogger("sluice.worker")

CLAIM_LEASE = timedelta(minutes=2)
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0


def backoff(attempts: int) -> timedelta:
    """Capped exponential backoff with a little jitter, so retries of many rows spread out."""
    seconds = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    jitter = secrets.randbelow(250) / 1000 * seconds
    return timedelta(seconds=seconds * 0.875 + jitter)


@dataclass(frozen=True)
class Job:
    grant_id: str
    operation: str  # "grant" or "revoke"
    integration_id: str
    unit: AccessUnit


class Reconciler:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        hub: ConnectorHub,
        box: SecretBox,
        clock: Callable[[], datetime],
        worker_id: str,
    ) -> None:
        self.factory = factory
        self.hub = hub
        self.box = box
        self.clock = clock
        self.worker_id = worker_id

    def claim(self, limit: int = 50) -> list[Job]:
        """Take up to `limit` rows that need work. On PostgreSQL rows other workers hold are skipped;
        the claim is a lease that lapses if this worker dies. Before a first grant the row records that
        the target is about to be touched (and the generated secret, sealed): no untracked credential."""
        now = self.clock()
        jobs = []
        with transaction(self.factory) as session:
            rows = session.scalars(
                select(Grant)
                .where(grant_needs_work(now))
                .order_by(Grant.next_attempt_at.is_not(None), Grant.next_attempt_at, Grant.ends_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for grant in rows:
                grant.claimed_by = self.worker_id
                grant.claimed_until = now + CLAIM_LEASE
                operation = "grant" if grant.desired == Desired.ACTIVE else "revoke"
                connector = self.hub.for_integration(grant.integration)
                secret = None
                if operation == "grant":
                    if grant.actual == Actual.NONE:
                        grant.actual = Actual.UNKNOWN
                    if connector.issues_secret:
                        if grant.credentials is None:
                            grant.credentials = self.box.seal(secrets.token_urlsafe(24))
                        secret = self.box.open(grant.credentials)
                jobs.append(
                    Job(
                        grant_id=grant.id,
                        operation=operation,
                        integration_id=grant.integration_id,
                        unit=AccessUnit(
                            grant_id=grant.id,
                            principal=grant.principal,
                            grantee_email=grant.identity.email,
                            resource_type=grant.resource_type,
                            resource_path=grant.resource_path,
                            permission=grant.permission,
                            ends_at=grant.ends_at,
                            secret=secret,
                        ),
                    )
                )
        return jobs

    def run(self, job: Job) -> None:
        with transaction(self.factory) as session:
            grant = session.get(Grant, job.grant_id)
            if grant is None:
                return
            connector = self.hub.for_integration(grant.integration)
        try:
            if job.operation == "grant":
                connection = connector.grant(job.unit)
            else:
                connector.revoke(job.unit)
                connection = None
        except SluiceError as exc:
            self._record_failure(job, exc)
            return
        except Exception as exc:  # a connector bug must not kill the loop; the row is retried
            log.exception("connector %s failed on grant %s", type(connector).__name__, job.grant_id)
            self._record_failure(job, TargetError(f"unexpected {type(exc).__name__} in connector"))
            return
        self._record_success(job, connection)

    def _release(self, session: Session, job: Job) -> Grant | None:
        grant = session.scalar(select(Grant).where(Grant.id == job.grant_id).with_for_update())
        if grant is None or grant.claimed_by != self.worker_id:
            return None  # our lease lapsed and another worker took the row; its outcome counts
        grant.claimed_by = None
        grant.claimed_until = None
        return grant

    def _record_success(self, job: Job, connection: dict | None) -> None:
        now = self.clock()
        with transaction(self.factory) as session:
            grant = self._release(session, job)
            if grant is None:
                return
            grant.attempts = 0
            grant.last_error = None
            grant.next_attempt_at = None
            grant.updated_at = now
            if job.operation == "grant":
                grant.actual = Actual.ACTIVE
                grant.connection = connection
                grant.granted_at = grant.granted_at or now
                action = Action.GRANT_ACTIVATED
            else:
                grant.actual = Actual.REVOKED
                grant.revoked_at = now
                grant.credentials = None  # the secret is useless now; keep nothing
                action = Action.GRANT_REVOKED
            record(
                session,
                now=now,
                actor="sluice",
                action=action,
                subject_type="grant",
                subject_id=grant.id,
                reason=grant.end_reason if job.operation == "revoke" else None,
                request_id=grant.request_id,
                grantee=job.unit.grantee_email,
                resource=grant.resource_path,
                permission=grant.permission,
                principal=grant.principal,
                ends_at=grant.ends_at.isoformat() if grant.ends_at else None,
            )
        log.info("%s done for grant %s", job.operation, job.grant_id)

    def _record_failure(self, job: Job, error: SluiceError) -> None:
        now = self.clock()
        retryable = not isinstance(error, TargetError) or error.retryable
        attempts = 0
        with transaction(self.factory) as session:
            grant = self._release(session, job)
            if grant is None:
                return
            grant.attempts += 1
            attempts = grant.attempts
            grant.last_error = error.detail[:2000]
            grant.next_attempt_at = now + backoff(grant.attempts)
            grant.updated_at = now
            action = Action.GRANT_FAILED if job.operation == "grant" else Action.GRANT_REVOKE_FAILED
            record(
                session,
                now=now,
                actor="sluice",
                action=action,
                subject_type="grant",
                subject_id=grant.id,
                reason=error.detail[:500],
                request_id=grant.request_id,
                resource=grant.resource_path,
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
        log.warning(
            "%s failed for grant %s (attempt %s): %s",
            job.operation,
            job.grant_id,
            attempts,
            error.detail,
        )


def release_stale_claims(factory: sessionmaker[Session], now: datetime) -> int:
    """Claims whose lease lapsed are free again (the claim query also ignores them; this tidies up)."""
    with transaction(factory) as session:
        result = session.execute(
            update(Grant)
            .where(Grant.claimed_until.is_not(None), Grant.claimed_until <= now)
            .values(claimed_by=None, claimed_until=None)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
