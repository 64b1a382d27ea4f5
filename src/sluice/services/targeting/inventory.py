"""Inventory sync: ask a connector what exists and make the resource table match, incrementally
(insert new, update changed, mark vanished ones deleted, bring back ones that reappear)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import DiscoveredResource
from sluice.domain.errors import NotFound, SluiceError, TargetError
from sluice.domain.lifecycle import Lifecycle
from sluice.events.audit import Action, record
from sluice.services.grants.vanished import close_requests_on_vanished
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.tags import sync_discovered_tags
from sluice.store.db import transaction
from sluice.store.tables import Integration, Resource
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
    session: Session, integration: Integration, found: list[DiscoveredResource], now: datetime
) -> SyncResult:
    existing = {
        r.path: r for r in session.scalars(select(Resource).where(Resource.integration_id == integration.id))
    }
    added = updated = 0
    seen: set[str] = set()
    # Parents first, so each child can point at its parent's row.
    for item in sorted(found, key=lambda d: d.path.count("/")):
        if item.path in seen:
            continue
        seen.add(item.path)
        parent = existing.get(item.parent_path) if item.parent_path else None
        row = existing.get(item.path)
        if row is None:
            row = Resource(
                id=new_id("res"),
                integration_id=integration.id,
                type=item.type,
                name=item.name,
                path=item.path,
                parent_id=parent.id if parent else None,
                discovered_at=now,
                updated_at=now,
            )
            session.add(row)
            existing[item.path] = row
            added += 1
            continue
        parent_id = parent.id if parent else None
        if (row.type, row.name, row.parent_id, row.deleted_at) != (item.type, item.name, parent_id, None):
            row.type, row.name, row.parent_id, row.deleted_at = item.type, item.name, parent_id, None
            row.updated_at = now
            updated += 1
    deleted = 0
    vanished: dict[str, str] = {}
    for path, row in existing.items():
        if path not in seen and row.deleted_at is None:
            row.deleted_at = now
            row.updated_at = now
            deleted += 1
            vanished[row.id] = path
    session.flush()
    sync_discovered_tags(session, integration.id, existing, found, now)
    close_requests_on_vanished(session, list(vanished), vanished, now)
    integration.last_sync_at = now
    integration.last_sync_error = None
    integration.resource_count = len(seen)
    return SyncResult(integration.name, added, updated, deleted, len(seen))


def sync_integration(
    factory: sessionmaker[Session], hub: ConnectorHub, name: str, *, clock: Callable[[], datetime]
) -> SyncResult:
    """Discover outside any transaction (a target may be slow), then apply in one transaction."""
    with transaction(factory) as session:
        integration = session.scalar(select(Integration).where(Integration.name == name))
        if integration is None:
            raise NotFound(f"no integration {name!r}")
        connector = hub.for_integration(integration)
    try:
        found = list(connector.discover())
    except SluiceError as exc:
        _record_sync_failure(factory, name, exc.detail, clock())
        raise
    except Exception as exc:
        _record_sync_failure(factory, name, f"unexpected {type(exc).__name__} during discovery", clock())
        raise TargetError(f"discovery of {name} failed unexpectedly") from exc
    now = clock()
    with transaction(factory) as session:
        integration = session.scalar(select(Integration).where(Integration.name == name).with_for_update())
        if integration is None:
            raise NotFound(f"integration {name!r} was removed during the sync")
        result = apply_discovery(session, integration, found, now)
        record(
            session,
            now=now,
            actor="sluice",
            action=Action.INVENTORY_SYNCED,
            subject_type="integration",
            subject_id=name,
            integration=name,
            counts=result.as_dict(),
        )
    return result


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
