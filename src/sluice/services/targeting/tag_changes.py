"""Tags other tools inject through the API: a batch of changes (set, delete, or replace every injected
tag of a resource), checked as a whole before the first write. An injected value hides the discovered
one under it until it is removed (see `tags.py`). Every change queues a re-evaluation of everyone."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from sluice.domain.errors import InvalidInput, NotFound
from sluice.events.audit import Action, record
from sluice.services.targeting.tags import MAX_VALUE, TAG_KEY, in_chunks
from sluice.store.people_queries import record_people_change
from sluice.store.tables import Resource
from sluice.store.targeting_tables import DISCOVERED, ResourceTag

MAX_BATCH = 10_000
MAX_TAGS_PER_RESOURCE = 200  # tags of one resource, discovered and injected together


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
    for chunk in in_chunks(unique):
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
    for chunk in in_chunks(list(resource_ids)):
        for tag in session.scalars(select(ResourceTag).where(ResourceTag.resource_id.in_(chunk))):
            current[tag.resource_id][tag.key] = tag
    return current


def resource_for_tags(session: Session, ref: str) -> Resource:
    row = session.get(Resource, ref) or session.scalar(select(Resource).where(Resource.path == ref))
    if row is None or row.deleted_at is not None:
        raise NotFound(f"no resource {ref!r}")
    return row
