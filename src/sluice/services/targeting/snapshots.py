"""Inventory snapshots: what the store knows of every target, as a file, so that policy tests
(`sluice test`) can run against a config file with no store and no target.

A snapshot holds each integration's name and kind and every live resource with its effective tags
(discovered, injected or set by hand: what the policy evaluator reads). Loading one into a store goes
through the same `apply_discovery` as a sync, so the resources are the rows a sync would write."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.connectors.base import DiscoveredResource
from sluice.domain.errors import InvalidInput
from sluice.services.targeting.inventory import apply_discovery
from sluice.services.targeting.tags import tags_of
from sluice.store.tables import Integration, Resource

FORMAT = "sluice-inventory/1"
MAX_RESOURCES = 2_000_000


class SnapshotResource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=60)
    name: str = Field(min_length=1, max_length=500)
    path: str = Field(min_length=1, max_length=2000)
    parent: str | None = Field(default=None, max_length=2000)
    tags: dict[str, str] = Field(default_factory=dict)


class SnapshotIntegration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    kind: str = Field(min_length=1, max_length=60)
    resources: list[SnapshotResource] = Field(default_factory=list, max_length=MAX_RESOURCES)


class Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = Field(pattern=f"^{FORMAT}$")
    taken_at: datetime
    integrations: list[SnapshotIntegration] = Field(default_factory=list, max_length=10_000)


def take_snapshot(session: Session, *, now: datetime, integration: str | None = None) -> dict[str, Any]:
    """Every live resource of every integration (or of one), as a JSON-ready snapshot."""
    query = select(Integration).order_by(Integration.name)
    if integration is not None:
        query = query.where(Integration.name == integration)
    out = []
    for row in session.scalars(query):
        resources = list(
            session.scalars(
                select(Resource)
                .where(Resource.integration_id == row.id, Resource.deleted_at.is_(None))
                .order_by(Resource.path)
            )
        )
        parents = {r.id: r.path for r in resources}
        tags = tags_of(session, [r.id for r in resources])
        out.append(
            {
                "name": row.name,
                "kind": row.kind,
                "resources": [
                    {
                        "type": r.type,
                        "name": r.name,
                        "path": r.path,
                        "parent": parents.get(r.parent_id) if r.parent_id else None,
                        "tags": tags.get(r.id, {}),
                    }
                    for r in resources
                ],
            }
        )
    return {"format": FORMAT, "taken_at": now.isoformat(), "integrations": out}


def read_snapshot(text: str, filename: str) -> Snapshot:
    try:
        return Snapshot.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{filename}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"{filename}: {where}: {first['msg']} (write it with `sluice inventory export`)"
        ) from exc


def load_snapshot(session: Session, snapshot: Snapshot, *, now: datetime) -> int:
    """Write the snapshot's resources into the store's integrations of the same names; the count."""
    by_name = {i.name: i for i in session.scalars(select(Integration))}
    loaded = 0
    for part in snapshot.integrations:
        integration = by_name.get(part.name)
        if integration is None:
            continue  # the config under test no longer has it
        if integration.kind != part.kind:
            raise InvalidInput(
                f"integration {part.name!r} is {integration.kind} in the config "
                f"but {part.kind} in the snapshot"
            )
        found = [DiscoveredResource(r.type, r.name, r.path, r.parent, dict(r.tags)) for r in part.resources]
        apply_discovery(session, integration, found, now)
        loaded += len(found)
    return loaded
