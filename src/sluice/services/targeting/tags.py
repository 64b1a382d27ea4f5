"""Resource tags: the ones connectors discover, and the ones other tools inject through the API.

A tag key on a resource has two layers: the value discovered in the target (replaced by every sync of
the integration) and the value injected through the API (source `api:<email>`, the holder of the
token that set it; kept across syncs). The effective value, which selectors and the policy read, is
the injected one if there is one, else the discovered one. Removing an injected value brings the
discovered one back at once; a sync updates the discovered layer under an injected value without
touching it. Every change through the API queues a re-evaluation of everyone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from sluice.connectors.base import DiscoveredResource
from sluice.domain.errors import InvalidInput, NotFound
from sluice.domain.policy import ResourceRef
from sluice.events.audit import Action, record
from sluice.store.people_queries import record_people_change
from sluice.store.tables import Resource
from sluice.store.targeting_tables import DISCOVERED, ResourceTag

TAG_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}$")
MAX_VALUE = 500
MAX_BATCH = 10_000
MAX_TAGS_PER_RESOURCE = 200  # tags of one resource, discovered and injected together
_CHUNK = 500


def injected_source(email: str) -> str:
    return f"api:{email}"


def check_tag(key: str, value: str) -> None:
    if not TAG_KEY.match(key):
        raise InvalidInput(
            f"tag key {key!r} must start with a letter or digit and hold only letters, digits and "
            "'_.:/-' (at most 200)"
        )
    if len(value) > MAX_VALUE or "\x00" in value:
        raise InvalidInput(f"the value of tag {key!r} must be at most {MAX_VALUE} characters, without NUL")


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def tags_of(session: Session, resource_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """Tags by resource id, for the given resources."""
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for chunk in _chunks(list(dict.fromkeys(resource_ids))):
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


@dataclass(frozen=True)
class TagChange:
    """Tags to set and keys to delete on one resource, named by its path or id."""

    resource: str
    set: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BatchResult:
    resources: int
    set: int
    deleted: int

    def as_dict(self) -> dict[str, int]:
        return {"resources": self.resources, "set": self.set, "deleted": self.deleted}


def _resolve(session: Session, refs: Sequence[str]) -> dict[str, str]:
    """Resource ids by the path or id each ref names (deleted resources cannot be tagged)."""
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(refs))
    for chunk in _chunks(unique):
        rows = session.execute(
            select(Resource.id, Resource.path).where(
                or_(Resource.path.in_(chunk), Resource.id.in_(chunk)), Resource.deleted_at.is_(None)
            )
        )
        for resource_id, path in rows:
            found[path] = resource_id
            found[resource_id] = resource_id
    return found


def apply_tag_changes(
    session: Session, changes: Sequence[TagChange], *, actor: str, now: datetime, replace: bool = False
) -> BatchResult:
    """Set and delete injected tags on many resources, all or nothing: every change is checked (each
    resource exists, keys and values are valid) before the first write. Deleting a key removes its
    injected value, and a discovered value under it takes effect again; a discovered value itself is
    not deleted (it follows the target). With `replace`, a resource's injected tags not named in
    `set` are removed (the PUT of one resource's tags). Any change queues a re-evaluation."""
    if len(changes) > MAX_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH} changes; split it")
    for number, change in enumerate(changes):
        try:
            for key, value in change.set.items():
                check_tag(key, value)
            for key in change.delete:
                check_tag(key, "")
        except InvalidInput as exc:
            raise InvalidInput(f"change {number}: {exc.detail}", index=number) from exc
        if set(change.set) & set(change.delete):
            raise InvalidInput(f"change {number}: a key is both set and deleted", index=number)
    ids = _resolve(session, [c.resource for c in changes])
    missing = [(n, c.resource) for n, c in enumerate(changes) if c.resource not in ids]
    if missing:
        shown = ", ".join(f"#{n} {ref!r}" for n, ref in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise NotFound(
            f"no resource for {len(missing)} change(s): {shown}{more}; nothing was applied",
            missing=[ref for _, ref in missing[:100]],
        )
    merged: dict[str, tuple[dict[str, str], set[str]]] = {}
    for change in changes:
        sets, deletes = merged.setdefault(ids[change.resource], ({}, set()))
        for key, value in change.set.items():
            sets[key] = value
            deletes.discard(key)
        for key in change.delete:
            sets.pop(key, None)
            deletes.add(key)
    source = injected_source(actor)
    current = _current_tags(session, list(merged))
    _within_cap(merged, current, replace=replace)
    set_count = deleted = 0
    for resource_id, (sets, deletes) in merged.items():
        have = current.get(resource_id, {})
        if replace:
            deletes |= {k for k, t in have.items() if t.source != DISCOVERED and k not in sets}
        deleted += _remove_injected(session, resource_id, [have[k] for k in deletes if k in have], now)
        for key, value in sets.items():
            tag = have.get(key)
            if tag is None:
                session.add(
                    ResourceTag(
                        resource_id=resource_id,
                        key=key,
                        value=value,
                        source=source,
                        discovered_value=None,
                        updated_at=now,
                    )
                )
            elif (tag.value, tag.source) != (value, source):
                tag.value, tag.source, tag.updated_at = value, source, now
            else:
                continue
            set_count += 1
    result = BatchResult(len(merged), set_count, deleted)
    # The tags are written before the audit event: flushing the event locks the audit chain's head until
    # commit, and every revoke records an event, so the head must not wait on thousands of tag rows.
    session.flush()
    if set_count or deleted:
        record_people_change(session, identity_id=None, reason="resource tags changed", now=now)
    record(
        session,
        now=now,
        actor=actor,
        action=Action.TAGS_CHANGED,
        subject_type="resource" if len(merged) == 1 else "inventory",
        subject_id=next(iter(merged)) if len(merged) == 1 else "tags",
        counts=result.as_dict(),
    )
    session.flush()
    return result


def _within_cap(
    merged: dict[str, tuple[dict[str, str], set[str]]],
    current: dict[str, dict[str, ResourceTag]],
    *,
    replace: bool,
) -> None:
    """Refuse, before any write, a change that would leave a resource with more tags than the cap: a
    caller adding a few tags a call cannot grow one resource without bound."""
    for resource_id, (sets, deletes) in merged.items():
        have = current.get(resource_id, {})
        kept = {k for k, t in have.items() if not (replace and t.source != DISCOVERED and k not in sets)}
        removed = {k for k in deletes if k in have and have[k].discovered_value is None}
        total = len((kept - removed) | set(sets))
        if total > MAX_TAGS_PER_RESOURCE:
            raise InvalidInput(
                f"resource {resource_id} would hold {total} tags; at most {MAX_TAGS_PER_RESOURCE} are allowed"
            )


def _remove_injected(session: Session, resource_id: str, tags: Sequence[ResourceTag], now: datetime) -> int:
    """Remove the injected value of these tags: a discovered value under one takes effect again, a tag
    with none is deleted. Returns how many injected values were removed."""
    injected = [t for t in tags if t.source != DISCOVERED]
    for tag in injected:
        if tag.discovered_value is not None:
            tag.value, tag.source, tag.updated_at = tag.discovered_value, DISCOVERED, now
    gone = [t.key for t in injected if t.discovered_value is None]
    if gone:
        session.execute(
            delete(ResourceTag).where(ResourceTag.resource_id == resource_id, ResourceTag.key.in_(gone))
        )
    return len(injected)


def _current_tags(session: Session, resource_ids: Sequence[str]) -> dict[str, dict[str, ResourceTag]]:
    current: dict[str, dict[str, ResourceTag]] = defaultdict(dict)
    for chunk in _chunks(list(resource_ids)):
        for tag in session.scalars(select(ResourceTag).where(ResourceTag.resource_id.in_(chunk))):
            current[tag.resource_id][tag.key] = tag
    return current


def resource_for_tags(session: Session, ref: str) -> Resource:
    row = session.get(Resource, ref) or session.scalar(select(Resource).where(Resource.path == ref))
    if row is None or row.deleted_at is not None:
        raise NotFound(f"no resource {ref!r}")
    return row


__all__ = [
    "BatchResult",
    "TagChange",
    "apply_tag_changes",
    "resource_for_tags",
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
