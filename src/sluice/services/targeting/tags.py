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

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.connectors.base import DiscoveredResource
from sluice.domain.policy import ResourceRef
from sluice.store.tables import Resource
from sluice.store.targeting_tables import DISCOVERED, ResourceTag

TAG_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}$")
MAX_VALUE = 500
_CHUNK = 500


def in_chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def tags_of(session: Session, resource_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Tags by resource id, for the given resources."""
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for chunk in in_chunks(list(dict.fromkeys(resource_ids))):
        rows = session.execute(
            select(ResourceTag.resource_id, ResourceTag.key, ResourceTag.value).where(
                ResourceTag.resource_id.in_(chunk)
            )
        )
        for resource_id, key, value in rows:
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
    integration_id: str,
    rows: Mapping[str, Resource],
    found: Sequence[DiscoveredResource],
    now: datetime,
) -> int:
    """Make the discovered layer of an integration's tags match what the connector reported.
    `rows` maps paths to resource rows (with ids). Injected values stay in effect; the discovered
    value under them is kept up to date. Returns the number of discovered values added, changed or
    removed."""
    wanted: dict[str, dict[str, str]] = {}
    for item in found:
        row = rows.get(item.path)
        if row is not None:
            wanted[row.id] = {k: v[:MAX_VALUE] for k, v in item.tags.items() if TAG_KEY.match(k)}
    existing: dict[tuple[str, str], ResourceTag] = {
        (t.resource_id, t.key): t
        for t in session.scalars(
            select(ResourceTag)
            .join(Resource, Resource.id == ResourceTag.resource_id)
            .where(Resource.integration_id == integration_id)
        )
    }
    changes = 0
    for (resource_id, key), tag in existing.items():
        value = wanted.get(resource_id, {}).get(key)
        if tag.source != DISCOVERED:  # an injected value stays in effect; the layer under it follows
            if value != tag.discovered_value:
                tag.discovered_value = value
                changes += 1
        elif value is None:
            session.delete(tag)
            changes += 1
        else:
            if value != tag.value:
                tag.value, tag.updated_at = value, now
                changes += 1
            tag.discovered_value = value  # equal to the effective value while nothing is injected
    for resource_id, tags in wanted.items():
        for key, value in tags.items():
            if (resource_id, key) not in existing:
                session.add(
                    ResourceTag(
                        resource_id=resource_id,
                        key=key,
                        value=value,
                        source=DISCOVERED,
                        discovered_value=value,
                        updated_at=now,
                    )
                )
                changes += 1
    return changes


__all__ = [
    "in_chunks",
    "resource_refs",
    "sync_discovered_tags",
    "tag_rows_of",
    "tags_of",
]


def resource_refs(session: Session, resources: Sequence[Resource]) -> list[ResourceRef]:
    """What the policy evaluator reads about each resource, tags included (one query for all)."""
    tags = tags_of(session, [r.id for r in resources])
    return [
        ResourceRef(r.integration.name, r.type, r.name, r.path, r.id, tags.get(r.id, {})) for r in resources
    ]
