"""SCIM groups of one directory source. The SCIM `id` is the group's id and `displayName` its name;
members are `group_members` rows carrying the source, so memberships the config or grants made are
never touched. Member changes are applied in the store (a group may have thousands of members), other
attributes through scim2-models. Nothing here commits."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from scim2_models import Context, Error, Group, InvalidValueException, UniquenessException
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sluice.events.audit import Action, record
from sluice.services.directory.scim_common import (
    ForeignOwner,
    Page,
    ScimError,
    apply_patch,
    narrowed_records,
    normalise_operations,
    page_of,
    parse_filter,
    parse_resource,
    record_of,
    taken_key,
)
from sluice.services.directory.scim_users import USER
from sluice.store.people_queries import record_people_change
from sluice.store.scim_tables import ScimRecord
from sluice.store.tables import Group as GroupRow
from sluice.store.tables import GroupMember, Identity
from sluice.store.types import new_id

GROUP = "Group"
_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+"([^"]*)"\s*\]$', re.IGNORECASE)


def _members_of(session: Session, source: str, group_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = defaultdict(list)
    rows = session.execute(
        select(GroupMember.group_id, Identity.id, ScimRecord.key)
        .join(Identity, Identity.id == GroupMember.identity_id)
        .join(ScimRecord, ScimRecord.id == Identity.id)
        .where(GroupMember.source == source, GroupMember.group_id.in_(list(group_ids)))
        .order_by(ScimRecord.key)
    )
    for group_id, identity_id, user_name in rows:
        found[group_id].append({"value": identity_id, "display": user_name, "type": USER})
    return found


def group_resources(session: Session, records: Sequence[ScimRecord]) -> list[Group]:
    if not records:
        return []
    members = _members_of(session, records[0].source, [r.id for r in records])
    resources = []
    for row in records:
        data = {
            **row.payload,
            "id": row.id,
            "displayName": row.key,
            "meta": {
                "resourceType": GROUP,
                "created": row.created_at.isoformat(),
                "lastModified": row.updated_at.isoformat(),
            },
        }
        if members.get(row.id):
            data["members"] = members[row.id]
        resources.append(Group.model_validate(data))
    return resources


def get_group(session: Session, *, source: str, group_id: str) -> Group:
    return group_resources(session, [record_of(session, source=source, kind=GROUP, resource_id=group_id)])[0]


def list_groups(
    session: Session, *, source: str, filter_text: str | None, start_index: int | None, count: int | None
) -> Page[Group]:
    scim_filter = parse_filter(Group, filter_text)
    records = narrowed_records(session, source=source, kind=GROUP, scim_filter=scim_filter)
    return page_of(
        records,
        lambda rows: group_resources(session, rows),
        scim_filter,
        start_index=start_index,
        count=count,
    )


def create_group(session: Session, *, source: str, body: Any, now: datetime) -> Group:
    group = parse_resource(Group, body, Context.RESOURCE_CREATION_REQUEST)
    row = _store(session, source=source, row=None, group=group, now=now)
    _set_members(session, source, row, _ids(group.members), now=now)
    return group_resources(session, [row])[0]


def replace_group(session: Session, *, source: str, group_id: str, body: Any, now: datetime) -> Group:
    row = record_of(session, source=source, kind=GROUP, resource_id=group_id)
    group = parse_resource(Group, body, Context.RESOURCE_REPLACEMENT_REQUEST)
    _store(session, source=source, row=row, group=group, now=now)
    _set_members(session, source, row, _ids(group.members), now=now)
    return group_resources(session, [row])[0]


def patch_group(session: Session, *, source: str, group_id: str, body: Any, now: datetime) -> Group:
    """Member operations (`add`/`replace`/`remove` on `members`, `members[value eq "…"]`, or a path-less
    value holding `members`) go to the store; the others are applied by scim2-models."""
    row = record_of(session, source=source, kind=GROUP, resource_id=group_id)
    operations = normalise_operations(body, {})["Operations"]
    others: list[dict[str, Any]] = []
    for operation in operations:
        rest = _member_operation(session, source, row, operation, now)
        if rest is not None:
            others.append(rest)
    if others:
        group = Group.model_validate({**row.payload, "id": row.id, "displayName": row.key})
        if apply_patch(Group, group, {**body, "Operations": others}):
            _store(session, source=source, row=row, group=group, now=now)
    return group_resources(session, [row])[0]


def delete_group(session: Session, *, source: str, group_id: str, now: datetime) -> None:
    row = record_of(session, source=source, kind=GROUP, resource_id=group_id)
    _set_members(session, source, row, [], now=now)
    group = session.get(GroupRow, row.id)
    session.delete(row)
    session.flush()
    others = session.scalar(
        select(func.count()).select_from(GroupMember).where(GroupMember.group_id == row.id)
    )
    if group is not None and not others:  # memberships from grants keep the group until they end
        session.delete(group)
    _audit(session, source, row.key, ["deleted"], now, action=Action.OBJECT_REMOVED)


def _ids(members: Iterable[Any] | None) -> list[str]:
    return [m.value for m in members or [] if m.value]


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        member = item.get("value") if isinstance(item, dict) else item
        if not isinstance(member, str) or not member:
            raise ScimError(
                Error(status=400, scim_type="invalidValue", detail="a member is {value: <user id>}")
            )
        found.append(member)
    return found


def _member_operation(
    session: Session, source: str, row: ScimRecord, operation: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """Apply the member part of one operation; return what is left for the model (or None)."""
    op, path, value = operation.get("op"), operation.get("path"), operation.get("value")
    current = _current_members(session, source, row.id)
    if path is None and isinstance(value, dict) and any(k.lower() == "members" for k in value):
        members = next(v for k, v in value.items() if k.lower() == "members")
        wanted = _values(members or [])
        _set_members(
            session, source, row, wanted if op == "replace" else [*current, *wanted], now=now, current=current
        )
        rest = {k: v for k, v in value.items() if k.lower() != "members"}
        return {**operation, "value": rest} if rest else None
    if not isinstance(path, str):
        return operation
    if path.lower() == "members":
        if op == "add":
            _set_members(session, source, row, [*current, *_values(value or [])], now=now, current=current)
        elif op == "replace":
            _set_members(session, source, row, _values(value or []), now=now, current=current)
        elif value:  # remove with a list of members (some providers)
            gone = set(_values(value))
            _set_members(
                session, source, row, [m for m in current if m not in gone], now=now, current=current
            )
        else:
            _set_members(session, source, row, [], now=now, current=current)
        return None
    selected = _MEMBER_FILTER.match(path)
    if selected is not None:
        if op != "remove":
            raise ScimError(
                Error(
                    status=400,
                    scim_type="invalidPath",
                    detail=f"{op} on {path!r}: only remove selects a member",
                )
            )
        _set_members(
            session, source, row, [m for m in current if m != selected.group(1)], now=now, current=current
        )
        return None
    if path.lower().startswith("members"):
        raise ScimError(
            Error(
                status=400,
                scim_type="invalidPath",
                detail=f'{path!r}: select a member as members[value eq "<id>"]',
            )
        )
    return operation


def _current_members(session: Session, source: str, group_id: str) -> list[str]:
    return list(
        session.scalars(
            select(GroupMember.identity_id).where(
                GroupMember.group_id == group_id, GroupMember.source == source
            )
        )
    )


def _set_members(
    session: Session,
    source: str,
    row: ScimRecord,
    wanted_ids: list[str],
    *,
    now: datetime,
    current: list[str] | None = None,
) -> None:
    """Make this source's members of the group exactly `wanted_ids` (users of the same source).
    `current`: the members as the caller just read them in this transaction, so a PATCH of one member
    reads the group once."""
    wanted = set(wanted_ids)
    current_ids = set(_current_members(session, source, row.id) if current is None else current)
    added, removed = wanted - current_ids, current_ids - wanted
    if added:
        known = set(
            session.scalars(
                select(ScimRecord.id).where(
                    ScimRecord.id.in_(sorted(added)), ScimRecord.source == source, ScimRecord.kind == USER
                )
            )
        )
        unknown = sorted(added - known)
        if unknown:
            raise InvalidValueException(
                detail=f"no user {unknown[0]!r} in this directory to add to {row.key}"
            )
        session.add_all(
            GroupMember(group_id=row.id, identity_id=i, source=source, expires_at=None) for i in sorted(added)
        )
    if removed:
        session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == row.id,
                GroupMember.source == source,
                GroupMember.identity_id.in_(sorted(removed)),
            )
        )
    if not (added or removed):
        return
    row.updated_at = now
    emails = dict(
        session.execute(select(Identity.id, Identity.email).where(Identity.id.in_(added | removed))).all()
    )
    for identity_id in sorted(added | removed):
        verb = "joined" if identity_id in added else "left"
        record_people_change(
            session,
            identity_id=identity_id,
            reason=f"{source}: {emails.get(identity_id)} {verb} {row.key}",
            now=now,
        )
    _audit(
        session,
        source,
        row.key,
        ["members"],
        now,
        action=Action.OBJECT_CHANGED,
        created=[emails.get(i, i) for i in sorted(added)],
        removed=[emails.get(i, i) for i in sorted(removed)],
    )


def _store(
    session: Session, *, source: str, row: ScimRecord | None, group: Group, now: datetime
) -> ScimRecord:
    name = (group.display_name or "").strip()
    if not name or len(name) > 200:
        raise InvalidValueException(detail="displayName is required, at most 200 characters")
    taken_key(session, source=source, kind=GROUP, key=name, other_than=row.id if row else None)
    holder = session.scalar(select(GroupRow).where(GroupRow.name == name))
    if holder is not None and (row is None or holder.id != row.id):
        if holder.source != source:
            raise ForeignOwner(source=source, owner=holder.source, kind="group", name=name, now=now)
        if session.get(ScimRecord, holder.id) is not None:
            raise UniquenessException(detail=f"a group named {name!r} exists already in this directory")
    payload = group.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for key in ("id", "meta", "members", "displayName"):
        payload.pop(key, None)
    if row is None:
        if holder is None:
            holder = GroupRow(id=new_id("grp"), name=name, description="", source=source)
            session.add(holder)
            session.flush()
        row = ScimRecord(
            id=holder.id,
            kind=GROUP,
            source=source,
            key=name,
            external_id=group.external_id,
            payload=payload,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        _audit(session, source, name, ["created"], now, action=Action.OBJECT_CREATED)
        return row
    changed = ["displayName"] if row.key != name else []
    if row.payload != payload or row.external_id != group.external_id:
        changed.append("attributes")
    if changed:
        own = session.get(GroupRow, row.id)
        if own is not None and own.name != name:
            own.name = name
            for identity_id in _current_members(session, source, row.id):
                record_people_change(
                    session, identity_id=identity_id, reason=f"{source} renamed {row.key}", now=now
                )
        row.key, row.external_id, row.payload, row.updated_at = name, group.external_id, payload, now
        _audit(session, source, name, changed, now, action=Action.OBJECT_CHANGED)
    return row


def _audit(
    session: Session,
    source: str,
    name: str,
    changed: list[str],
    now: datetime,
    *,
    action: Action,
    **extra: Any,
) -> None:
    details: dict[str, Any] = {} if changed in (["created"], ["deleted"]) else {"changed": changed}
    record(
        session,
        now=now,
        actor=source,
        action=action,
        subject_type="group",
        subject_id=name[:200],
        kind="group",
        name=name,
        source=source,
        **details,
        **extra,
    )
