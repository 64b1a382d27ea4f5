"""Restore safety: compare what the targets really hold with the grant rows, and fix the differences
toward the safer side. Run after the store was restored from an older backup (`sluice reconcile`),
or at worker start (`SLUICE_RECONCILE_ON_START=1`), before any stale row is acted on.

- `orphan`: the target holds a principal this installation made that no grant justifies (a grant
  made after the backup, a lost row): it is removed from the target. Which principals are ours and
  which are justified is decided in one place, `services/grants/orphans.py`, shared with the worker's sweep.
- `unclaimed`: a principal marked before principals carried their installation, that this store has
  no grant row for: maybe another installation's, so it is shown and left alone.
- `missing`: a row says the access is active, but the target does not hold it (it was revoked after
  the backup, or by hand): the row is ended, never re-created from stale data.
Everything else (rows still being granted, pending, already ended) is left to the worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.states import Actual, Desired, is_active
from sluice.events.audit import Action, record
from sluice.services.grants.orphans import find_orphans, integrations, remove_orphan
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.grant_states import grant_is_active
from sluice.store.tables import Grant, Integration

log = logging.getLogger("sluice.reconcile")

ORPHAN = "orphan"
UNCLAIMED = "unclaimed"
MISSING = "missing"


UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Difference:
    integration: str
    kind: str  # orphan | unclaimed | missing | unreachable
    principal: str
    grant_id: str | None
    action: str  # what was (or, in a dry run, would be) done
    done: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def reconcile_targets(
    factory: sessionmaker[Session],
    hub: ConnectorHub,
    *,
    clock: Callable[[], datetime],
    dry_run: bool,
) -> list[Difference]:
    found: list[Difference] = []
    for integration in integrations(factory):
        found.extend(_one(factory, hub, integration, clock=clock, dry_run=dry_run))
    return found


def _one(
    factory: sessionmaker[Session],
    hub: ConnectorHub,
    integration: Integration,
    *,
    clock: Callable[[], datetime],
    dry_run: bool,
) -> list[Difference]:
    connector = hub.for_integration(integration)
    findings = find_orphans(factory, connector, integration)
    if findings.error is not None:
        log.warning("reconcile: cannot list %s: %s", integration.name, findings.error)
        return [Difference(integration.name, UNREACHABLE, "", None, f"not compared: {findings.error}")]
    found = []
    for orphan in sorted(findings.orphans, key=lambda o: o.principal):
        difference = Difference(
            integration.name, ORPHAN, orphan.principal, orphan.grant_id, "remove from the target"
        )
        if not dry_run:
            reason = "reconcile: no live grant justifies it"
            failed = remove_orphan(factory, connector, orphan, clock=clock, reason=reason)
            action = f"removal failed: {failed}" if failed else difference.action
            difference = replace(difference, action=action, done=failed is None)
        found.append(difference)
    for managed in sorted(findings.unclaimed, key=lambda m: m.principal):
        action = "left alone: made before installation marks, and no grant of this store made it"
        found.append(Difference(integration.name, UNCLAIMED, managed.principal, managed.grant_id, action))
    held = {m.grant_id for m in findings.held}
    with transaction(factory) as session:
        active = session.execute(
            select(Grant.id, Grant.principal).where(
                Grant.integration_id == integration.id,
                grant_is_active(),
            )
        ).all()
    for grant_id, principal in sorted(active, key=lambda row: row.principal):
        if grant_id not in held:
            difference = Difference(
                integration.name, MISSING, principal, grant_id, "end the grant (not re-created)"
            )
            if not dry_run:
                difference = _end(factory, difference, clock)
            found.append(difference)
    return found


def _end(factory: sessionmaker[Session], difference: Difference, clock: Callable[[], datetime]) -> Difference:
    now = clock()
    with transaction(factory) as session:
        grant = session.scalar(select(Grant).where(Grant.id == difference.grant_id).with_for_update())
        if grant is None or not is_active(grant.desired, grant.actual):
            return difference  # changed meanwhile; the worker takes it from here
        grant.desired = Desired.REVOKED
        grant.actual = Actual.REVOKED
        grant.revoked_at = now
        grant.credentials = None
        grant.end_reason = "reconcile: not held by the target (store restored from an older backup?)"
        grant.updated_at = now
        record(
            session,
            now=now,
            actor="sluice",
            action=Action.GRANT_RECONCILED,
            subject_type="grant",
            subject_id=grant.id,
            reason=grant.end_reason,
            request_id=grant.request_id,
            principal=grant.principal,
            integration=difference.integration,
        )
    return replace(difference, done=True)
