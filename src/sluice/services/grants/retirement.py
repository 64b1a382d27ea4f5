"""The worker's retirement duty: finish retiring an integration once none of its grants is live.

`integration_ending.start_retirement` closed the integration and ended its grants; the worker's
target work takes each away like any other revoke. When none is live any more, this duty removes what
is still Sluice's in the target: the orphans of the integration (the same rule as the orphan sweep,
`orphans.py`) and the shared objects its connector made (`LeavesLeftovers`, e.g. the PostgreSQL
privilege roles). Only then is the integration marked retired; its grants, requests and audit events
stay, and the config may drop it. Every step is idempotent, so a failed or interrupted pass is simply
tried again (every `RETRY_AFTER`), by this worker or another."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import LeavesLeftovers, Leftovers
from sluice.domain.errors import SluiceError
from sluice.domain.lifecycle import Lifecycle
from sluice.events.audit import Action, record
from sluice.services.grants.orphans import find_orphans, remove_orphan
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.grant_states import grant_is_live
from sluice.store.tables import Grant, Integration

log = logging.getLogger("sluice.worker")

RETRY_AFTER = timedelta(seconds=30)


def _no_live_grant() -> ColumnElement[bool]:
    return ~exists().where(Grant.integration_id == Integration.id, grant_is_live())


# Retiring integrations none of whose grants is live any more; built once (the worker asks every pass).
_READY = (
    select(Integration)
    .where(Integration.lifecycle == Lifecycle.RETIRING, _no_live_grant())
    .order_by(Integration.name)
)


def _ready(session: Session) -> list[Integration]:
    return list(session.scalars(_READY))


class Retirement:
    def __init__(
        self, factory: sessionmaker[Session], hub: ConnectorHub, *, clock: Callable[[], datetime]
    ) -> None:
        self.factory = factory
        self.hub = hub
        self.clock = clock
        self.failed_at: dict[str, datetime] = {}

    def run(self) -> list[str]:
        """Finish every retirement that is ready; returns the names retired in this pass."""
        now = self.clock()
        with transaction(self.factory) as session:
            ready = _ready(session)
        retired = []
        for integration in ready:
            failed = self.failed_at.get(integration.name)
            if failed is not None and now - failed < RETRY_AFTER:
                continue
            error = self._finish(integration)
            if error is None:
                self.failed_at.pop(integration.name, None)
                retired.append(integration.name)
            else:
                self.failed_at[integration.name] = self.clock()
                log.warning("retiring %s is not finished yet: %s", integration.name, error)
                self._remember(integration.name, error)
        return retired

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        names = [i.name for i in _ready(session)]
        if not names:
            return None
        return min((self.failed_at[n] + RETRY_AFTER) if n in self.failed_at else now for n in names)

    def _finish(self, integration: Integration) -> str | None:
        """Clean the target and mark the integration retired; returns what stopped it, if anything."""
        connector = self.hub.for_integration(integration)
        findings = find_orphans(self.factory, connector, integration)
        if findings.error is not None:
            return f"cannot list what Sluice made in the target: {findings.error}"
        reason = f"integration {integration.name} retires"
        for orphan in findings.orphans:
            problem = remove_orphan(self.factory, connector, orphan, clock=self.clock, reason=reason)
            if problem is not None:
                return f"cannot remove {orphan.principal}: {problem}"
        try:
            leftovers = (
                connector.remove_leftovers() if isinstance(connector, LeavesLeftovers) else Leftovers()
            )
        except SluiceError as exc:
            return f"cannot remove the shared objects Sluice made: {exc.detail}"
        for kept in leftovers.kept:
            log.warning("retiring %s left %s in the target", integration.name, kept)
        return self._mark_retired(integration.name, leftovers)

    def _mark_retired(self, name: str, leftovers: Leftovers) -> str | None:
        now = self.clock()
        with transaction(self.factory) as session:
            row = session.scalar(select(Integration).where(Integration.name == name).with_for_update())
            if row is None or row.lifecycle != Lifecycle.RETIRING:
                return None  # another worker finished it meanwhile
            if session.scalar(select(exists().where(Grant.integration_id == row.id, grant_is_live()))):
                return "a grant of it is live again"
            row.lifecycle = Lifecycle.RETIRED
            row.retired_at = now
            row.retire_error = None
            row.updated_at = now
            record(
                session,
                now=now,
                actor="sluice",
                action=Action.INTEGRATION_RETIRED,
                subject_type="integration",
                subject_id=name,
                reason="no grant is live and nothing Sluice made is left in the target"
                if not leftovers.kept
                else "no grant is live; shared objects another installation still uses were kept",
                integration=name,
                removed=leftovers.removed,
                counts={"kept": len(leftovers.kept)},
            )
        log.info("integration %s retired", name, extra={"integration": name})
        return None

    def _remember(self, name: str, error: str) -> None:
        with transaction(self.factory) as session:
            row = session.scalar(select(Integration).where(Integration.name == name))
            if row is not None and row.lifecycle == Lifecycle.RETIRING:
                row.retire_error = error[:2000]
