"""The staging side of an inventory sync: what a connector lists is written to `inventory_staging` a
chunk at a time, so that neither the listing nor the comparison ever holds a whole inventory."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sluice.connectors.base import DiscoveredResource
from sluice.services.targeting.tags import MAX_VALUE, TAG_KEY
from sluice.store.bulk import insert_many
from sluice.store.targeting_tables import InventoryStaging

CHUNK = 5000
# A sync that died (process killed) leaves its staged rows; the next sync of the integration drops
# rows older than this, which no sync still running can own.
STALE_AFTER = timedelta(hours=6)


def chunked(items: Iterable[DiscoveredResource]) -> Iterator[list[DiscoveredResource]]:
    iterator, size = iter(items), CHUNK
    while chunk := list(islice(iterator, size)):
        yield chunk


def stage_chunk(
    session: Session, sync_id: str, integration_id: str, chunk: list[DiscoveredResource], now: datetime
) -> None:
    """Write one chunk of what the connector listed. A path listed twice keeps its first listing,
    within a chunk and across chunks."""
    rows: dict[str, dict[str, object]] = {}
    for item in chunk:
        if item.path in rows:
            continue
        tags = {k: v[:MAX_VALUE] for k, v in item.tags.items() if TAG_KEY.match(k)}
        rows[item.path] = {
            "sync_id": sync_id,
            "path": item.path,
            "integration_id": integration_id,
            "type": item.type,
            "name": item.name,
            "parent_path": item.parent_path,
            "tags": json.dumps(tags, sort_keys=True, separators=(",", ":")),
            "staged_at": now,
        }
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    table = cast(Table, InventoryStaging.__table__)
    statement = (
        postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    ).on_conflict_do_nothing()
    insert_many(session, statement, list(rows.values()))


def staged_count(session: Session, sync_id: str) -> int:
    return session.scalar(select(func.count()).where(InventoryStaging.sync_id == sync_id)) or 0


def unstage(session: Session, sync_id: str) -> None:
    session.connection().execute(
        delete(cast(Table, InventoryStaging.__table__)).where(InventoryStaging.sync_id == sync_id)
    )


def drop_stale(session: Session, integration_id: str, now: datetime) -> None:
    session.connection().execute(
        delete(cast(Table, InventoryStaging.__table__)).where(
            InventoryStaging.integration_id == integration_id, InventoryStaging.staged_at < now - STALE_AFTER
        )
    )
