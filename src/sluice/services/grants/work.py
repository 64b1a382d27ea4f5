"""The target work on grant rows: claim rows whose desired state differs from the actual one, act on
the target, record the outcome (`work_outcomes.py`; claims themselves, renewed and taken over, are
`claims.py`'s). A crash at any point leaves a row that still differs and is picked again after its
claim lapses, so every connector operation is idempotent.

Each step opens its own short transaction, because the target call between claiming and recording
must run outside any: a slow or hanging target never holds store locks. The worker only schedules
these steps (`worker/dispatch.py` runs the target calls in its threads)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import AccessUnit, Connector
from sluice.domain.errors import SluiceError, TargetError
from sluice.domain.states import Actual, never_touched, should_be_active
from sluice.events import metrics
from sluice.runtime.tuning import Tuning
from sluice.services.grants.claims import CLAIMABLE, INTEGRATIONS_WITH_WORK, record_takeover, write_claims
from sluice.services.grants.endings import GrantRow
from sluice.services.grants.secrets import SecretBox
from sluice.services.grants.work_outcomes import Job, Outcome, log_outcome, record_failure
from sluice.services.grants.work_successes import OUTCOME_COLUMNS, record_successes
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.grant_states import grant_is_live, grant_needs_target_work, grant_needs_work
from sluice.store.tables import Grant, Integration

log = logging.getLogger("sluice.worker")  # what the worker does, under the name operators filter on

CLAIM_LEASE = Tuning.claim_lease  # the default; `Tuning.claim_lease` is what a worker uses
# How soon a worker looks again at work due now that it could not claim and whose claim it cannot
# see (another worker's claim of it has not committed yet): short next to a lease.
UNSEEN_CLAIM_RECHECK = timedelta(seconds=0.25)


@dataclass(frozen=True)
class Claim:
    """What one claim took. `took_all`: every row due now that no other worker holds is in `jobs`
    (no integration filled its share), so claiming again finds nothing until something new is due."""

    jobs: list[Job]
    took_all: bool


class GrantWork:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        hub: ConnectorHub,
        box: SecretBox,
        clock: Callable[[], datetime],
        worker_id: str,
        tuning: Tuning | None = None,
    ) -> None:
        self.factory = factory
        self.hub = hub
        self.box = box
        self.clock = clock
        self.worker_id = worker_id
        self.tuning = tuning or Tuning()

    def claim(self, limit: int | None = None, *, room: Callable[[str], int] | None = None) -> Claim:
        """Take rows that need work, integration by integration so that every target gets its turn:
        at most `limit` per integration, and no more than `room(integration_id)` (what this worker can
        start on it now). On PostgreSQL rows other workers hold are skipped; the claim is a short lease
        that this worker's heartbeat renews (`renew_claims`) and that lapses soon after it dies.
        Before a first grant the row records that the target is about to be touched (and the
        generated secret, sealed): no untracked credential."""
        now = self.clock()
        per_integration = limit or self.tuning.claim_per_integration
        jobs = []
        claim = {"claimed_by": self.worker_id, "claimed_until": now + self.tuning.claim_lease}
        with transaction(self.factory) as session:
            integrations = session.scalars(INTEGRATIONS_WITH_WORK, {"now": now}).all()
            took_all = True
            claimed = []
            for integration in integrations:
                take = min(per_integration, room(integration.id)) if room else per_integration
                if take <= 0:
                    took_all = False
                    continue
                found = session.execute(
                    CLAIMABLE, {"now": now, "integration_id": integration.id, "take": take}
                ).all()
                took_all = took_all and len(found) < take
                connector = self.hub.for_integration(integration)
                for row in found:
                    if row.claimed_by is not None and row.claimed_by != self.worker_id:
                        record_takeover(
                            session, row, integration=integration.name, worker_id=self.worker_id, now=now
                        )
                    job, written = self._job(row, integration, connector)
                    jobs.append(job)
                    claimed.append(written | claim | {"grant_id": row.id})
            write_claims(session, claimed)
        return Claim(jobs, took_all)

    def _job(
        self, row: GrantRow, integration: Integration, connector: Connector
    ) -> tuple[Job, dict[str, Any]]:
        """The job of one claimed row, and what claiming writes to it besides the claim: before a
        first grant, that the target is about to be touched and the sealed secret it will be given."""
        operation = "grant" if should_be_active(row.desired) else "revoke"
        actual, sealed, secret = row.actual, row.credentials, None
        if operation == "grant":
            if never_touched(actual):
                actual = Actual.UNKNOWN.value
            if connector.issues_secret:
                if sealed is None:
                    sealed = self.box.seal(secrets.token_urlsafe(24))
                secret = self.box.open(sealed)
        job = Job(
            grant_id=row.id,
            operation=operation,
            integration_id=integration.id,
            integration_name=integration.name,
            retry=row.attempts > 0,
            request_id=row.request_id,
            connector=connector,
            unit=AccessUnit(
                grant_id=row.id,
                principal=row.principal,
                grantee_email=row.email,
                resource_type=row.resource_type,
                resource_path=row.resource_path,
                permission=row.permission,
                ends_at=row.ends_at,
                secret=secret,
            ),
        )
        return job, {"actual": actual, "credentials": sealed}

    def run(self, job: Job) -> Outcome:
        """Do the target call of one job. Nothing is written to the store here: outcomes are recorded
        together by `record`, so many target calls share one store transaction."""
        if job.retry:
            metrics.TARGET_RETRIES.labels(job.integration_name, job.operation).inc()
        connector = job.connector
        if connector is None:
            with transaction(self.factory) as session:
                grant = session.get(Grant, job.grant_id)
                if grant is None:
                    return Outcome(job, error=TargetError("the grant row is gone"))
                connector = self.hub.for_integration(grant.integration)
        try:
            if job.operation == "grant":
                outcome = Outcome(job, connection=connector.grant(job.unit))
            else:
                connector.revoke(job.unit)
                outcome = Outcome(job)
        except SluiceError as exc:
            outcome = Outcome(job, error=exc)
        except Exception as exc:  # a connector bug must not kill the loop; the row is retried
            log.exception("connector %s failed on grant %s", type(connector).__name__, job.grant_id)
            outcome = Outcome(job, error=TargetError(f"unexpected {type(exc).__name__} in connector"))
        result = "done" if outcome.error is None else "failed"
        metrics.TARGET_OPERATIONS.labels(job.integration_name, job.operation, result).inc()
        if outcome.error is not None:
            metrics.TARGET_FAILURES.labels(job.integration_name, job.operation).inc()
        return outcome

    def record(self, outcomes: list[Outcome]) -> None:
        """Write what the target calls did, in one transaction. A row whose claim lapsed and was taken
        by another worker is left alone: that worker's outcome counts."""
        if not outcomes:
            return
        now = self.clock()
        with transaction(self.factory) as session:
            ids = [o.job.grant_id for o in outcomes]
            held = session.execute(
                OUTCOME_COLUMNS.where(Grant.id.in_(ids)).order_by(Grant.id).with_for_update()
            ).all()
            mine = {row.id: row for row in held if row.claimed_by == self.worker_id}
            done = [(mine[o.job.grant_id], o) for o in outcomes if o.error is None and o.job.grant_id in mine]
            failed = [o for o in outcomes if o.error is not None and o.job.grant_id in mine]
            attempts = {row.id: 0 for row, _ in done}
            if failed:
                failed_ids = [o.job.grant_id for o in failed]
                grants = {g.id: g for g in session.scalars(select(Grant).where(Grant.id.in_(failed_ids)))}
                for outcome in failed:
                    grant = grants[outcome.job.grant_id]
                    grant.claimed_by = None
                    grant.claimed_until = None
                    record_failure(session, grant, outcome, now, self.tuning)
                    attempts[grant.id] = grant.attempts
            record_successes(session, done, now)
        for outcome in outcomes:
            log_outcome(outcome, attempts.get(outcome.job.grant_id))

    def run_and_record(self, job: Job) -> None:
        """One job start to finish (tests and one-off callers)."""
        self.record([self.run(job)])


# Built once, with the moment bound at execution: the worker asks after every pass.
_NEXT_RETRY = select(func.min(Grant.next_attempt_at)).where(
    grant_needs_target_work(), Grant.next_attempt_at > bindparam("now")
)
_NEXT_LAPSE = select(func.min(Grant.claimed_until)).where(
    Grant.claimed_until > bindparam("now"), grant_is_live()
)
_UNHELD_WORK = select(Grant.id).where(grant_needs_work(bindparam("now"))).limit(1)


def next_due(session: Session, now: datetime) -> datetime | None:
    """The earliest moment target work comes due without anyone asking: a retry after a backoff, a
    claim that lapses (its holder died), or a second look shortly at work due now that no committed
    claim holds. End times are the expiry duty's (`services/grants/revocation.py`).

    Called after this worker's own claim, so work due now and visibly unheld was passed over (SKIP
    LOCKED) because another worker's claim of it has not committed yet, or it arrived since. Its lease
    cannot be read until then, and without a second look this worker would sleep until some other
    moment, perhaps long after that lease lapses if its holder dies. A retry time or lease already
    past belongs to a row that is either due now (that second look) or held (its lease is the moment):
    taken as is it would make the loop run pass after pass while another worker holds the row."""
    at = {"now": now}
    candidates = [session.scalar(_NEXT_RETRY, at), session.scalar(_NEXT_LAPSE, at)]
    if session.scalar(_UNHELD_WORK, at) is not None:
        candidates.append(now + UNSEEN_CLAIM_RECHECK)
    present = [c for c in candidates if c is not None]
    return min(present) if present else None
