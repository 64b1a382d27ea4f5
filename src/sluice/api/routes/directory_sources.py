"""Directory sources Sluice reads (LDAP): how each one's last sync went, and a sync now (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from sluice.api.auth import AdminDep, AuditorDep, RuntimeDep
from sluice.api.params import NamePath
from sluice.services.directory.ldap_sync import SyncOutcome, sync_sources
from sluice.store.db import transaction
from sluice.store.directory_tables import DirectorySource

router = APIRouter(tags=["directory"])


class DirectorySourceView(BaseModel):
    name: str
    kind: str
    source: str  # what its identities and groups carry, e.g. ldap:corp
    sync_interval_seconds: int
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    last_error: str | None
    last_result: dict[str, Any] | None


class DirectorySourceList(BaseModel):
    items: list[DirectorySourceView]


class DirectorySyncView(BaseModel):
    name: str
    ok: bool
    error: str | None
    result: dict[str, Any] | None


class DirectorySyncList(BaseModel):
    items: list[DirectorySyncView]


def _sync_view(outcome: SyncOutcome) -> DirectorySyncView:
    result = outcome.result.as_dict() if outcome.result is not None else None
    return DirectorySyncView(name=outcome.name, ok=outcome.ok, error=outcome.error, result=result)


@router.get(
    "/directory/sources",
    response_model=DirectorySourceList,
    summary="Directory sources and their last sync (auditor)",
)
def list_sources(runtime: RuntimeDep, caller: AuditorDep) -> DirectorySourceList:
    with transaction(runtime.factory) as session:
        rows = session.scalars(select(DirectorySource).order_by(DirectorySource.name))
        items = [
            DirectorySourceView(
                name=row.name,
                kind=row.kind,
                source=f"{row.kind}:{row.name}",
                sync_interval_seconds=row.sync_interval_seconds,
                last_sync_at=row.last_sync_at,
                next_sync_at=row.next_sync_at,
                last_error=row.last_error,
                last_result=row.last_result,
            )
            for row in rows
        ]
    return DirectorySourceList(items=items)


@router.post(
    "/directory/sync", response_model=DirectorySyncList, summary="Sync every directory source now (admin)"
)
def sync_all(runtime: RuntimeDep, caller: AdminDep) -> DirectorySyncList:
    """A source that cannot be read is part of the answer (`ok: false`, `error`), and changes nothing."""
    outcomes = sync_sources(runtime.factory, None, clock=runtime.clock, notify=runtime.notify_work)
    return DirectorySyncList(items=[_sync_view(o) for o in outcomes])


@router.post(
    "/directory/sources/{name}/sync",
    response_model=DirectorySyncView,
    summary="Sync one directory source now (admin)",
)
def sync_one(name: NamePath, runtime: RuntimeDep, caller: AdminDep) -> DirectorySyncView:
    outcome = sync_sources(runtime.factory, [name], clock=runtime.clock, notify=runtime.notify_work)[0]
    return _sync_view(outcome)
