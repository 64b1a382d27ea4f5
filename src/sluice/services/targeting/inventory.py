"""Inventory sync: ask a connector what exists and make the resource table match, incrementally
(insert new, update changed, mark vanished ones deleted, bring back ones that reappear). What the
connector lists is staged a chunk at a time (`inventory_staging.py`) and compared in path order
(`inventory_apply.py`), so a sync holds a chunk in memory, never the whole inventory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import DiscoveredResource
from sluice.domain.errors import NotFound, SluiceError, TargetError
from sluice.domain.lifecycle import Lifecycle
from sluice.events.audit import Action, record
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory_apply import apply_staged
from sluice.services.targeting.inventory_staging import chunked, drop_stale, stage_chunk, unstage
from sluice.store.db import transaction
from sluice.store.tables import Integration
from sluice.store.types import new_id

log = logging.getLogger("sluice.worker")  # the worker's sync duty logs what it did


@dataclass(frozen=True)
class SyncResult:
    integration: str
    added: int
    updated: int
    deleted: int
    total: int

    def as_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "deleted": self.deleted, "total": self.total}


def apply_discovery(
    session: Session, integration: Integration, found: Iterable[DiscoveredResource], now: datetime
) -> SyncResult:
    """Make the integration's inventory match `found`, in the caller's transaction (snapshots, tests).
    `found` may be any iterable: it is staged a chunk at a time."""
    sync_id = new_id("sync")
    for chunk in chunked(found):
        stage_chunk(session, sync_id, integration.id, chunk, now)
    return _apply(session, integration, sync_id, now)


def _apply(session: Session, integration: Integration, sync_id: str, now: datetime) -> SyncResult:
    applied = apply_staged(session, integration.id, sync_id, now)
    unstage(session, sync_id)
    integration.last_sync_at = now
    integration.last_sync_error = None
    integration.resource_count = applied.total
    result = SyncResult(integration.name, applied.added, applied.updated, applied.deleted, applied.total)
    if applied.changed:  # an unchanged inventory leaves no audit event behind
        record(
            session,
            now=now,
            actor="sluice",
            action=Action.INVENTORY_SYNCED,
            subject_type="integration",
            subject_id=integration.name,
            integration=integration.name,
            counts=result.as_dict(),
        )
    return result


def sync_integration(
    factory: sessionmaker[Session], hub: ConnectorHub, name: str, *, clock: Callable[[], datetime]
) -> SyncResult:
    """Read the target a chunk at a time outside any transaction (a target may be slow), staging each
    chunk in its own short transaction; then compare and apply in one transaction."""
    with transaction(factory) as session:
        integration = session.scalar(select(Integration).where(Integration.name == name))
        if integration is None:
            raise NotFound(f"no integration {name!r}")
        connector = hub.for_integration(integration)
        integration_id = integration.id
        drop_stale(session, integration_id, clock())
    sync_id = new_id("sync")
    try:
        for chunk in chunked(connector.discover()):
            with transaction(factory) as session:
                stage_chunk(session, sync_id, integration_id, chunk, clock())
        now = clock()
        with transaction(factory) as session:
            integration = session.scalar(
                select(Integration).where(Integration.name == name).with_for_update()
            )
            if integration is None:
                raise NotFound(f"integration {name!r} was removed during the sync")
            return _apply(session, integration, sync_id, now)
    except SluiceError as exc:
        _forget(factory, sync_id)
        if not isinstance(exc, NotFound):
            _record_sync_failure(factory, name, exc.detail, clock())
        raise
    except Exception as exc:
        _forget(factory, sync_id)
        _record_sync_failure(factory, name, f"unexpected {type(exc).__name__} during discovery", clock())
        raise TargetError(f"discovery of {name} failed unexpectedly") from exc


def _forget(factory: sessionmaker[Session], sync_id: str) -> None:
    with transaction(factory) as session:
        unstage(session, sync_id)


def _record_sync_failure(factory: sessionmaker[Session], name: str, error: str, now: datetime) -> None:
    with transaction(factory) as session:
        integration = session.scalar(select(Integration).where(Integration.name == name))
        if integration is None:
            return
        integration.last_sync_error = error[:2000]
        integration.last_sync_at = now
        record(
            session,
            now=now,
            actor="sluice",
            action=Action.INVENTORY_SYNC_FAILED,
            subject_type="integration",
            subject_id=name,
            integration=name,
            error=error[:500],
        )


def _syncable() -> Select[Integration]:
    """Integrations whose inventory is kept: all but the retired ones."""
    return select(Integration).where(Integration.lifecycle != Lifecycle.RETIRED)


def integrations_due_for_sync(session: Session, now: datetime) -> list[str]:
    due = []
    for integration in session.scalars(_syncable().order_by(Integration.name)):
        last = integration.last_sync_at
        if last is None or last + timedelta(seconds=integration.sync_interval_seconds) <= now:
            due.append(integration.name)
    return due


def next_sync_at(session: Session, now: datetime) -> datetime | None:
    """When the next integration is due to sync: `now` for one never synced, None with none at all."""
    times = [
        (i.last_sync_at + timedelta(seconds=i.sync_interval_seconds)) if i.last_sync_at else now
        for i in session.scalars(_syncable())
    ]
    return min(times) if times else None


class InventorySync:
    """The worker's duty: sync every integration whose sync interval has passed. Each sync reads the
    target outside any transaction (`sync_integration`)."""

    def __init__(
        self, factory: sessionmaker[Session], hub: ConnectorHub, *, clock: Callable[[], datetime]
    ) -> None:
        self.factory = factory
        self.hub = hub
        self.clock = clock

    def run(self) -> list[str]:
        """Returns the integrations synced."""
        with transaction(self.factory) as session:
            due = integrations_due_for_sync(session, self.clock())
        synced = []
        for name in due:
            try:
                result = sync_integration(self.factory, self.hub, name, clock=self.clock)
                log.info("synced %s: %s", name, result.as_dict())
                synced.append(name)
            except SluiceError as exc:
                log.warning("sync of %s failed: %s", name, exc.detail)
        return synced

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        return next_sync_at(session, now)
