"""Orphan removal: the one place that decides which principal in a target no grant justifies, used by
the worker's periodic sweep and by `sluice reconcile`.

What is looked at: what the connector's `list_managed` reports, which is only this installation's
principals (marked with the store's installation id) and legacy ones (marked before principals
carried an installation id). A principal marked by another installation is never even listed.

The rule, written once (`store/grant_states.grant_justifies_principal`): a principal is justified when a
grant row of the same integration, with the grant id the principal carries, should be active, or is
revoked but the worker has yet to take it away. Anything else of ours is an orphan and is removed.

A legacy principal may be another installation's, so it is adopted only when this store proves it
made it: a grant row of the same integration with that grant id and that very principal name. An
adopted legacy principal follows the rule above; one this store has no row for is left alone and
reported as `unclaimed`, never removed.

The target is listed before the rows are read: a grant's row is written before its principal is
created, so a principal that shows up in the listing always has its row visible by then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from sluice.connectors.base import AccessUnit, Connector, ManagedPrincipal
from sluice.domain.errors import SluiceError
from sluice.domain.lifecycle import Lifecycle
from sluice.events import metrics
from sluice.events.audit import Action, record
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.grant_states import grant_justifies_principal
from sluice.store.tables import Grant, Integration

log = logging.getLogger("sluice.orphans")

_CHUNK = 500


@dataclass(frozen=True)
class Orphan:
    """A principal of ours no grant justifies, and how to tell the connector to remove it: with the
    grant row's resource where the row is still there, by principal and grant id alone where not."""

    integration: str
    unit: AccessUnit

    @property
    def principal(self) -> str:
        return self.unit.principal

    @property
    def grant_id(self) -> str:
        return self.unit.grant_id


@dataclass
class Findings:
    """One integration compared with its target."""

    integration: str
    held: list[ManagedPrincipal] = field(default_factory=list)  # everything of ours listed
    orphans: list[Orphan] = field(default_factory=list)
    unclaimed: list[ManagedPrincipal] = field(default_factory=list)  # legacy, not provably ours
    error: str | None = None  # the target could not be listed: nothing was compared


def find_orphans(factory: sessionmaker[Session], connector: Connector, integration: Integration) -> Findings:
    findings = Findings(integration.name)
    try:
        findings.held = connector.list_managed()
    except SluiceError as exc:
        findings.error = exc.detail
        return findings
    rows = _rows_of(factory, integration.id, findings.held)
    for managed in findings.held:
        found = rows.get(managed.grant_id or "")
        if managed.legacy and (found is None or found[0].principal != managed.principal):
            findings.unclaimed.append(managed)  # maybe another installation's: never ours to remove
            continue
        if found is not None and found[1]:
            continue  # justified
        grant = found[0] if found is not None else None
        findings.orphans.append(Orphan(integration.name, _unit(managed, grant)))
    return findings


def remove_orphan(
    factory: sessionmaker[Session],
    connector: Connector,
    orphan: Orphan,
    *,
    clock: Callable[[], datetime],
    reason: str,
) -> str | None:
    """Remove one orphan from its target and audit it; returns why it could not be removed, if so."""
    try:
        connector.revoke(orphan.unit)
    except SluiceError as exc:
        log.warning("orphan %s in %s not removed yet: %s", orphan.principal, orphan.integration, exc.detail)
        return exc.detail
    metrics.ORPHANS_REMOVED.labels(orphan.integration).inc()
    with transaction(factory) as session:
        record(
            session,
            now=clock(),
            actor="sluice",
            action=Action.ORPHAN_REMOVED,
            subject_type="integration",
            subject_id=orphan.integration,
            reason=reason,
            integration=orphan.integration,
            principal=orphan.principal,
            grant_id=orphan.grant_id,
        )
    return None


def sweep_orphans(factory: sessionmaker[Session], hub: ConnectorHub, *, clock: Callable[[], datetime]) -> int:
    """Remove from every target what this installation made there and no grant justifies; returns
    how many principals were removed."""
    removed = 0
    for integration in integrations(factory):
        connector = hub.for_integration(integration)
        findings = find_orphans(factory, connector, integration)
        if findings.error is not None:
            log.warning("orphan sweep could not list %s: %s", integration.name, findings.error)
            continue
        if findings.unclaimed:
            log.info(
                "orphan sweep left %d unmarked principal(s) in %s alone: no grant of this store made them",
                len(findings.unclaimed),
                integration.name,
            )
        for orphan in findings.orphans:
            reason = "no live grant of this installation justifies it"
            if remove_orphan(factory, connector, orphan, clock=clock, reason=reason) is None:
                removed += 1
    return removed


def integrations(factory: sessionmaker[Session]) -> list[Integration]:
    with transaction(factory) as session:
        # A retired integration has nothing of ours left in its target, which may be gone by now.
        query = select(Integration).where(Integration.lifecycle != Lifecycle.RETIRED)
        return list(session.scalars(query.order_by(Integration.name)))


def _rows_of(
    factory: sessionmaker[Session], integration_id: str, managed: Sequence[ManagedPrincipal]
) -> dict[str, tuple[Grant, bool]]:
    """The grant rows of this integration that the listed principals name, each with whether it
    justifies its principal; loaded with their grantee, detached, read in chunks."""
    wanted = sorted({m.grant_id for m in managed if m.grant_id})
    found: dict[str, tuple[Grant, bool]] = {}
    for start in range(0, len(wanted), _CHUNK):
        query = (
            select(Grant, grant_justifies_principal())
            .where(Grant.integration_id == integration_id, Grant.id.in_(wanted[start : start + _CHUNK]))
            .options(selectinload(Grant.identity))
        )
        with transaction(factory) as session:
            for grant, justified in session.execute(query):
                found[grant.id] = (grant, bool(justified))
    return found


def _unit(managed: ManagedPrincipal, grant: Grant | None) -> AccessUnit:
    return AccessUnit(
        grant_id=managed.grant_id or "",
        principal=managed.principal,
        grantee_email=grant.identity.email if grant else "",
        resource_type=grant.resource_type if grant else "",
        resource_path=grant.resource_path if grant else "",
        permission=grant.permission if grant else "",
    )


class OrphanSweep:
    """The worker's duty: sweep orphans every `every`, the first time at the end of its first pass."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        hub: ConnectorHub,
        *,
        clock: Callable[[], datetime],
        every: timedelta,
    ) -> None:
        self.factory = factory
        self.hub = hub
        self.clock = clock
        self.every = every
        self.last: datetime | None = None

    def run(self) -> int | None:
        """Sweep when due; returns how many principals were removed (None: not due)."""
        if self.last is not None and self.clock() - self.last < self.every:
            return None
        return self.sweep()

    def sweep(self) -> int:
        self.last = self.clock()
        return sweep_orphans(self.factory, self.hub, clock=self.clock)

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        return now if self.last is None else self.last + self.every
