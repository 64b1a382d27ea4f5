"""Restore safety: compare what the targets really hold with the grant rows, and fix the differences
toward the safer side. Run after the store was restored from an older backup (`sluice reconcile`),
or at worker start (`SLUICE_RECONCILE_ON_START=1`), before any stale row is acted on.

- `orphan`: the target holds a principal Sluice made that no live grant justifies (a grant made
  after the backup, a lost row): it is removed from the target.
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

from sluice.connectors.base import AccessUnit, Connector
from sluice.domain.errors import SluiceError
from sluice.domain.states import Actual, Desired
from sluice.events.audit import Action, record
from sluice.services.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.tables import Grant, Integration

log = logging.getLogger("sluice.reconcile")

ORPHAN = "orphan"
MISSING = "missing"


@dataclass(frozen=True)
class Difference:
    integration: str
    kind: str  # orphan | missing | unreachable
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
    with transaction(factory) as session:
        integrations = list(session.scalars(select(Integration).order_by(Integration.name)))
    for integration in integrations:
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
    try:
        held = {p.principal: p for p in connector.list_managed()}
    except SluiceError as exc:
        log.warning("reconcile: cannot list %s: %s", integration.name, exc.detail)
        return [Difference(integration.name, "unreachable", "", None, f"not compared: {exc.detail}")]
    with transaction(factory) as session:
        rows = {
            g.principal: (g.id, g.desired, g.actual)
            for g in session.scalars(select(Grant).where(Grant.integration_id == integration.id))
        }
    found = []
    for principal, managed in sorted(held.items()):
        row = rows.get(principal)
        justified = row is not None and (
            row[1] == Desired.ACTIVE
            or (row[1] == Desired.REVOKED and row[2] in (Actual.ACTIVE, Actual.UNKNOWN))
        )
        if justified:
            continue  # live, or being revoked by the worker anyway
        difference = Difference(
            integration.name, ORPHAN, principal, managed.grant_id, "remove from the target"
        )
        if not dry_run:
            difference = _remove(factory, connector, integration.name, difference, clock)
        found.append(difference)
    for principal, (grant_id, desired, actual) in sorted(rows.items()):
        if desired == Desired.ACTIVE and actual == Actual.ACTIVE and principal not in held:
            difference = Difference(
                integration.name, MISSING, principal, grant_id, "end the grant (not re-created)"
            )
            if not dry_run:
                difference = _end(factory, difference, clock)
            found.append(difference)
    return found


def _remove(
    factory: sessionmaker[Session],
    connector: Connector,
    integration: str,
    difference: Difference,
    clock: Callable[[], datetime],
) -> Difference:
    unit = AccessUnit(
        grant_id=difference.grant_id or "",
        principal=difference.principal,
        grantee_email="",
        resource_type="",
        resource_path="",
        permission="",
    )
    try:
        connector.revoke(unit)
    except SluiceError as exc:
        return replace(difference, action=f"removal failed: {exc.detail}")
    with transaction(factory) as session:
        record(
            session,
            now=clock(),
            actor="sluice",
            action=Action.ORPHAN_REMOVED,
            subject_type="integration",
            subject_id=integration,
            reason="reconcile: no live grant justifies it",
            integration=integration,
            principal=difference.principal,
            grant_id=difference.grant_id,
        )
    return replace(difference, done=True)


def _end(factory: sessionmaker[Session], difference: Difference, clock: Callable[[], datetime]) -> Difference:
    now = clock()
    with transaction(factory) as session:
        grant = session.scalar(select(Grant).where(Grant.id == difference.grant_id).with_for_update())
        if grant is None or (grant.desired, grant.actual) != (Desired.ACTIVE, Actual.ACTIVE):
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
