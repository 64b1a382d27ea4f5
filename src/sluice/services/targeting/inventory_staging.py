"""The staging side of an inventory sync: what a connector lists is written to `inventory_staging` a
chunk at a time, so that neither the listing nor the comparison ever holds a whole inventory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from sluice.connectors.base import DiscoveredResource
from sluice.services.targeting.tags import MAX_VALUE, TAG_KEY, encode_discovered
from sluice.store.bulk import driver_value, insert_new_tuples
from sluice.store.targeting_tables import InventoryStaging

CHUNK = 5000
# A sync that died (process killed) leaves its staged rows; the next sync of the integration drops
# rows older than this, which no sync still running can own.
STALE_AFTER = timedelta(hours=6)


def chunked(items: Iterable[DiscoveredResource]) -> Iterator[list[DiscoveredResource]]:
    iterator, size = iter(items), CHUNK
    while chunk := list(islice(iterator, size)):
        yield chunk


class _ValidKeys(dict[str, bool]):
    """Whether each tag key is one a resource may have, checked once per key: a listing repeats a
    few keys over every resource."""

    def __missing__(self, key: str) -> bool:
        self[key] = valid = TAG_KEY.match(key) is not None
        return valid


_COLUMNS = ("sync_id", "path", "integration_id", "type", "name", "parent_path", "tags", "staged_at")


def stage_chunk(
    session: Session, sync_id: str, integration_id: str, chunk: list[DiscoveredResource], now: datetime
) -> None:
    """Write one chunk of what the connector listed. A path listed twice keeps its first listing,
    within a chunk and across chunks. Rows go to the driver as tuples: this runs once per listed
    resource, a million times in a large sync."""
    table = cast(Table, InventoryStaging.__table__)
    stamp = driver_value(session, table.c.staged_at, now)
    valid = _ValidKeys()
    rows: dict[str, tuple[object, ...]] = {}
    for item in chunk:
        if item.path in rows:
            continue
        tags = item.tags
        encoded = encode_discovered({k: v[:MAX_VALUE] for k, v in tags.items() if valid[k]} if tags else {})
        rows[item.path] = (
            sync_id,
            item.path,
            integration_id,
            item.type,
            item.name,
            item.parent_path,
            encoded,
            stamp,
        )
    insert_new_tuples(session, table, _COLUMNS, list(rows.values()))


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
