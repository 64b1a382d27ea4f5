"""Resource tags: the ones connectors discover, and the ones other tools inject through the API.

A tag key on a resource has two layers: the value discovered in the target (replaced by every sync of
the integration) and the value injected through the API (source `api:<email>`, the holder of the
token that set it; kept across syncs). The effective value, which selectors and the policy read, is
the injected one if there is one, else the discovered one. Removing an injected value brings the
discovered one back at once; a sync updates the discovered layer under an injected value without
touching it. This module keeps the discovered layer and reads both; the injected one is changed in
`tag_changes.py`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    FromClause,
    ScalarSelect,
    Table,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from sluice.domain.policy import ResourceRef
from sluice.store.bulk import insert_many
from sluice.store.tables import Resource
from sluice.store.targeting_tables import DISCOVERED, ResourceTag

TAG_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}$")
MAX_VALUE = 500
_CHUNK = 500


def in_chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


# One statement for every call, its ids bound at execution: building it anew per call took half the
# time of a page's tags (the ids coerced one by one, the statement walked for its cache key).
_TAGS_OF = select(ResourceTag.resource_id, ResourceTag.key, ResourceTag.value).where(
    ResourceTag.resource_id.in_(bindparam("ids", expanding=True))
)


def tags_of(session: Session, resource_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Tags by resource id, for the given resources."""
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for chunk in in_chunks(list(dict.fromkeys(resource_ids))):
        for resource_id, key, value in session.execute(_TAGS_OF, {"ids": list(chunk)}):
            tags[resource_id][key] = value
    return tags


def tag_rows_of(session: Session, resource_id: str) -> list[ResourceTag]:
    return list(
        session.scalars(
            select(ResourceTag).where(ResourceTag.resource_id == resource_id).order_by(ResourceTag.key)
        )
    )


def sync_discovered_tags(
    session: Session,
    wanted: Mapping[str, Mapping[str, str]],
    stored: Iterable[tuple[str, str, str, str, str | None]],
    now: datetime,
) -> int:
    """Make the discovered layer of some resources' tags match what the connector reported: `wanted`
    maps resource ids to their discovered tags (already filtered), `stored` is the tag rows these
    resources have now (resource id, key, value, source, discovered value). Injected values stay in
    effect; the discovered value under them is kept up to date. Writes only what differs; returns the
    number of discovered values added, changed or removed."""
    table = cast(Table, ResourceTag.__table__)
    connection = session.connection()
    seen: set[tuple[str, str]] = set()
    removed: list[dict[str, str]] = []
    changed: list[tuple[str, str, dict[str, object]]] = []
    for resource_id, key, value, source, discovered in stored:
        seen.add((resource_id, key))
        found = wanted.get(resource_id, {}).get(key)
        if source != DISCOVERED:  # an injected value stays in effect; the layer under it follows
            if found != discovered:
                changed.append((resource_id, key, {"discovered_value": found}))
        elif found is None:
            removed.append({"b_id": resource_id, "b_key": key})
        elif found != value:
            changed.append((resource_id, key, {"value": found, "discovered_value": found, "updated_at": now}))
        elif discovered != found:  # equal to the effective value while nothing is injected
            changed.append((resource_id, key, {"discovered_value": found}))
    added = [
        {
            "resource_id": resource_id,
            "key": key,
            "value": value,
            "source": DISCOVERED,
            "discovered_value": value,
            "updated_at": now,
        }
        for resource_id, tags in wanted.items()
        for key, value in tags.items()
        if (resource_id, key) not in seen
    ]
    where = (table.c.resource_id == bindparam("b_id"), table.c.key == bindparam("b_key"))
    if removed:
        connection.execute(delete(table).where(*where), removed)
    for resource_id, key, values in changed:  # few: a sync changes little at a time
        connection.execute(
            update(table).where(table.c.resource_id == resource_id, table.c.key == key).values(**values)
        )
    if added:
        insert_many(session, insert(table), added)
    return len(removed) + len(changed) + len(added)


# A sync compares what a connector listed with the discovered layer in the store as one text per
# resource, so that an unchanged resource costs a string comparison, not a read of its tag rows:
# `encode_discovered` writes the listed tags, a JSON object with sorted keys, and the sync keeps that
# text on the resource row (`resources.discovered_tags`) when it writes the layer. Where no sync has
# kept it, `stored_discovered_text` builds it from the tag rows in the same form. Equal texts mean
# nothing to write: both are valid JSON, so they hold the same pairs. Any difference in form (another
# escaping of an odd character, another order) only sends the resource to the detailed comparison,
# `sync_discovered_tags`.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def encode_discovered(tags: Mapping[str, str]) -> str:
    return _encode(tags) if tags else "{}"


def discovered_text(dialect: str, resource: FromClause) -> ColumnElement[str]:
    """The discovered layer of `resource` (a `resources` row) as `encode_discovered` writes it: the
    text its last sync kept, else built from its tag rows (only then: COALESCE stops at the first
    value that is not NULL)."""
    return func.coalesce(resource.c.discovered_tags, stored_discovered_text(dialect, resource.c.id))


def stored_discovered_text(dialect: str, resource_id: ColumnElement[Any]) -> ScalarSelect[Any]:
    """The discovered layer of the resource `resource_id` built from its tag rows, as
    `encode_discovered` writes it. A discovered value in effect whose `discovered_value` is not that
    value (rows written before that column) adds a `!` no encoded listing can match, so the detailed
    comparison repairs it."""
    tag = cast(Table, ResourceTag.__table__).alias("t")

    def quoted(column: ColumnElement[Any]) -> ColumnElement[str]:
        if dialect == "postgresql":
            return func.to_json(column).cast(Text)
        return func.json_quote(column, type_=Text)

    discovered = tag.c.discovered_value
    element = case(
        (
            and_(tag.c.source == DISCOVERED, or_(discovered.is_(None), discovered != tag.c.value)),
            literal("!", Text),
        ),
        (discovered.is_not(None), quoted(tag.c.key) + literal(":", Text) + quoted(discovered)),
    )
    # Rows come in key order along the primary key; no ORDER BY in the aggregate, which would sort
    # every resource's tags and doubled the cost of this subquery on PostgreSQL. Under a collation
    # whose order is not the code points', some resources' texts differ from the listing's and go to
    # the detailed comparison: slower, never wrong.
    if dialect == "postgresql":
        joined = func.string_agg(element, literal(",", Text), type_=Text)
    else:
        joined = func.group_concat(element, ",", type_=Text)
    text = literal("{", Text) + func.coalesce(joined, literal("", Text)) + literal("}", Text)
    return select(text).where(tag.c.resource_id == resource_id).scalar_subquery()


def forget_discovered_tags(session: Session, resource_ids: Sequence[str]) -> int:
    """The resources vanished from their target: their discovered values go, and with them the text
    their last sync kept; injected values stay."""
    table = cast(Table, ResourceTag.__table__)
    resources = cast(Table, Resource.__table__)
    connection = session.connection()
    changes = 0
    for chunk in in_chunks(list(resource_ids)):
        connection.execute(update(resources).where(resources.c.id.in_(chunk)).values(discovered_tags=None))
        gone = connection.execute(
            delete(table).where(table.c.resource_id.in_(chunk), table.c.source == DISCOVERED)
        )
        kept = connection.execute(
            update(table)
            .where(table.c.resource_id.in_(chunk), table.c.discovered_value.is_not(None))
            .values(discovered_value=None)
        )
        changes += gone.rowcount + kept.rowcount
    return changes


__all__ = [
    "discovered_text",
    "encode_discovered",
    "forget_discovered_tags",
    "in_chunks",
    "resource_refs",
    "stored_discovered_text",
    "sync_discovered_tags",
    "tag_rows_of",
    "tags_of",
]


def resource_refs(
    session: Session, resources: Sequence[Resource], *, with_tags: bool = True
) -> list[ResourceRef]:
    """What the policy evaluator reads about each resource, tags included (one query for all) unless
    the caller knows no criteria it evaluates reads them (`with_tags=False`: no query)."""
    tags = tags_of(session, [r.id for r in resources]) if with_tags else {}
    return [
        ResourceRef(r.integration.name, r.type, r.name, r.path, r.id, tags.get(r.id, {})) for r in resources
    ]
