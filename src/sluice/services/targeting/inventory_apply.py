"""The apply side of an inventory sync: walk what was staged in path order, a chunk at a time, beside
the store's rows for the same paths, and write only what differs (insert new, update changed, mark
vanished ones deleted, bring back ones that reappear). Memory follows the chunk, not the inventory;
an unchanged inventory writes nothing here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from sluice.services.grants.vanished import close_requests_on_vanished
from sluice.services.targeting import inventory_staging as staging
from sluice.services.targeting.tags import (
    discovered_text,
    forget_discovered_tags,
    in_chunks,
    sync_discovered_tags,
)
from sluice.store.bulk import Prepared, insert_many
from sluice.store.tables import Resource
from sluice.store.targeting_tables import InventoryStaging, ResourceTag
from sluice.store.types import new_id

_resources = cast(Table, Resource.__table__)
_staged = cast(Table, InventoryStaging.__table__)
_tags_table = cast(Table, ResourceTag.__table__)


@dataclass
class Applied:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    tags: int = 0
    total: int = 0
    # Rows whose parent had not been met yet (listed later, under a path that sorts after them):
    # (row id, parent path, parent id now, already counted as added or updated).
    pending: list[tuple[str, str, str | None, bool]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted or self.tags)


def apply_staged(session: Session, integration_id: str, sync_id: str, now: datetime) -> Applied:
    applied = Applied()
    chunks = Prepared(session, _chunk_query(session.get_bind().dialect.name))
    params: dict[str, Any] = {
        "sync_id": sync_id,
        "integration_id": integration_id,
        "after": "",
        "size": staging.CHUNK,
    }
    while rows := chunks.rows(params):
        params["after"] = rows[-1][0]
        _apply_chunk(session, integration_id, rows, now, applied)
    _resolve_parents(session, integration_id, applied, now)
    _mark_vanished(session, integration_id, sync_id, now, applied)
    for obj in list(session.identity_map.values()):  # the writes above went around the ORM
        if isinstance(obj, Resource | ResourceTag):
            session.expire(obj)
    return applied


def _chunk_query(dialect: str) -> Select[Any]:
    """The next staged rows in path order, each with the store's row of the same path, its parent's id
    (both absent for a new path), the discovered tags text its last sync kept and its discovered tags
    as text (that one, or built from its tag rows), to compare with the staged text."""
    row, parent = _resources.alias("r"), _resources.alias("p")
    return (
        select(
            _staged.c.path,
            _staged.c.type,
            _staged.c.name,
            _staged.c.parent_path,
            _staged.c.tags,
            row.c.id,
            row.c.integration_id,
            row.c.type,
            row.c.name,
            row.c.parent_id,
            row.c.deleted_at,
            parent.c.id,
            row.c.discovered_tags,
            discovered_text(dialect, row),
        )
        .select_from(
            _staged.outerjoin(row, row.c.path == _staged.c.path).outerjoin(
                parent,
                and_(
                    parent.c.path == _staged.c.parent_path,
                    parent.c.integration_id == bindparam("integration_id"),
                ),
            )
        )
        .where(_staged.c.sync_id == bindparam("sync_id"), _staged.c.path > bindparam("after"))
        .order_by(_staged.c.path)
        .limit(bindparam("size"))
    )


def _apply_chunk(
    session: Session,
    integration_id: str,
    rows: Sequence[tuple[Any, ...]],
    now: datetime,
    applied: Applied,
) -> None:
    new_rows: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    wanted: dict[str, dict[str, str]] = {}
    new_here: dict[str, str] = {}
    retagged: list[str] = []
    kept_text: list[dict[str, Any]] = []
    for path, type_, name, parent_path, tags, row_id, owner, *was, found_parent, kept, stored_tags in rows:
        if row_id is not None and owner != integration_id:
            continue  # the path belongs to another integration's inventory
        applied.total += 1
        rid = row_id or new_id("res")
        parent_id = found_parent or (new_here.get(parent_path) if parent_path else None)
        unresolved = parent_path is not None and parent_id is None
        if row_id is None:
            new_here[path] = rid
            new_rows.append(
                {
                    "id": rid,
                    "integration_id": integration_id,
                    "type": type_,
                    "name": name,
                    "path": path,
                    "parent_id": parent_id,
                    "discovered_at": now,
                    "updated_at": now,
                    "discovered_tags": tags,
                }
            )
            applied.added += 1
            counted = True
        else:
            keep_parent = was[2] if unresolved else parent_id
            counted = tuple(was) != (type_, name, keep_parent, None)
            if counted:
                changed.append(
                    {
                        "b_id": rid,
                        "type": type_,
                        "name": name,
                        "parent_id": keep_parent,
                        "deleted_at": None,
                        "updated_at": now,
                    }
                )
                applied.updated += 1
        if unresolved:
            applied.pending.append((rid, parent_path, None if row_id is None else was[2], counted))
        if tags != stored_tags:  # a new row's stored text is "{}" too
            wanted[rid] = json.loads(tags)
            if row_id is not None:
                retagged.append(row_id)
        if row_id is not None and tags != kept:  # the layer is about to match the listing
            kept_text.append({"b_id": row_id, "discovered_tags": tags})
    connection = session.connection()
    if new_rows:
        insert_many(session, _resources.insert(), new_rows)
    if changed:
        connection.execute(_update_by_id(), changed)
    if kept_text:  # bookkeeping of the sync, not a change of the resource: `updated_at` stays
        connection.execute(_update_by_id(), kept_text)
    if wanted:
        applied.tags += sync_discovered_tags(session, wanted, _tag_rows(session, retagged), now)


def _tag_rows(session: Session, resource_ids: list[str]) -> list[tuple[Any, ...]]:
    """The stored tag rows of the resources whose discovered tags differ from what was listed."""
    tag = _tags_table
    columns = (tag.c.resource_id, tag.c.key, tag.c.value, tag.c.source, tag.c.discovered_value)
    found: list[tuple[Any, ...]] = []
    for ids in in_chunks(resource_ids):
        found += session.connection().execute(select(*columns).where(tag.c.resource_id.in_(ids))).all()
    return found


def _update_by_id() -> Any:
    """One UPDATE for a chunk's changed rows; what it sets follows the keys of each row given."""
    return _resources.update().where(_resources.c.id == bindparam("b_id"))


def _resolve_parents(session: Session, integration_id: str, applied: Applied, now: datetime) -> None:
    """Parents listed after their children: found now that every chunk is in, or none at all."""
    connection = session.connection()
    for start in range(0, len(applied.pending), 500):
        batch = applied.pending[start : start + 500]
        found = dict(
            connection.execute(
                select(_resources.c.path, _resources.c.id).where(
                    _resources.c.integration_id == integration_id,
                    _resources.c.path.in_({parent_path for _, parent_path, _, _ in batch}),
                )
            ).all()
        )
        for rid, parent_path, parent_id, counted in batch:
            resolved = found.get(parent_path)
            if resolved == parent_id:
                continue
            values: dict[str, Any] = {"parent_id": resolved}
            if not counted:
                values["updated_at"] = now
                applied.updated += 1
            connection.execute(update(_resources).where(_resources.c.id == rid).values(**values))
    applied.pending.clear()


def _mark_vanished(
    session: Session, integration_id: str, sync_id: str, now: datetime, applied: Applied
) -> None:
    """Live rows of the integration that this sync did not list: deleted now, their discovered tags
    gone, and requests still waiting on them closed."""
    connection = session.connection()
    # Every listed row is live by now, so as many live rows as listed ones means none vanished: a count
    # on the integration's index instead of a search of every live row for its staged path.
    live = connection.scalar(
        select(func.count())
        .select_from(_resources)
        .where(_resources.c.integration_id == integration_id, _resources.c.deleted_at.is_(None))
    )
    if live == applied.total:
        return
    last = ""
    while True:
        batch = connection.execute(
            select(_resources.c.id, _resources.c.path)
            .where(
                _resources.c.integration_id == integration_id,
                _resources.c.deleted_at.is_(None),
                _resources.c.id > last,
                ~exists().where(_staged.c.sync_id == sync_id, _staged.c.path == _resources.c.path),
            )
            .order_by(_resources.c.id)
            .limit(staging.CHUNK)
        ).all()
        if not batch:
            return
        last = batch[-1].id
        ids = [rid for rid, _ in batch]
        for start in range(0, len(ids), 500):
            connection.execute(
                update(_resources)
                .where(_resources.c.id.in_(ids[start : start + 500]))
                .values(deleted_at=now, updated_at=now)
            )
        applied.deleted += len(ids)
        applied.tags += forget_discovered_tags(session, ids)
        close_requests_on_vanished(session, ids, dict(batch), now)
