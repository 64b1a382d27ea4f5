"""The members of a SCIM group: this source's `group_members` rows, set and changed in the store (a
group may have thousands of members), and PATCH operations on `members` read from their many shapes
(`members`, `members[value eq "…"]`, a path-less value holding `members`). Nothing here commits."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from scim2_models import Error, InvalidValueException
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sluice.events.audit import Action, record
from sluice.services.directory.scim_common import ScimError
from sluice.services.directory.scim_users import USER
from sluice.store.people_queries import record_people_change
from sluice.store.scim_tables import ScimRecord
from sluice.store.tables import GroupMember, Identity

_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+"([^"]*)"\s*\]$', re.IGNORECASE)


def member_ids(members: Iterable[Any] | None) -> list[str]:
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


def member_operation(
    session: Session, source: str, row: ScimRecord, operation: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """Apply the member part of one operation; return what is left for the model (or None)."""
    op, path, value = operation.get("op"), operation.get("path"), operation.get("value")
    current = current_members(session, source, row.id)
    if path is None and isinstance(value, dict) and any(k.lower() == "members" for k in value):
        members = next(v for k, v in value.items() if k.lower() == "members")
        wanted = _values(members or [])
        set_members(
            session, source, row, wanted if op == "replace" else [*current, *wanted], now=now, current=current
        )
        rest = {k: v for k, v in value.items() if k.lower() != "members"}
        return {**operation, "value": rest} if rest else None
    if not isinstance(path, str):
        return operation
    if path.lower() == "members":
        if op == "add":
            set_members(session, source, row, [*current, *_values(value or [])], now=now, current=current)
        elif op == "replace":
            set_members(session, source, row, _values(value or []), now=now, current=current)
        elif value:  # remove with a list of members (some providers)
            gone = set(_values(value))
            set_members(session, source, row, [m for m in current if m not in gone], now=now, current=current)
        else:
            set_members(session, source, row, [], now=now, current=current)
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
        set_members(
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


def current_members(session: Session, source: str, group_id: str) -> list[str]:
    return list(
        session.scalars(
            select(GroupMember.identity_id).where(
                GroupMember.group_id == group_id, GroupMember.source == source
            )
        )
    )


def set_members(
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
    current_ids = set(current_members(session, source, row.id) if current is None else current)
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
    audit_group_change(
        session,
        source,
        row.key,
        ["members"],
        now,
        action=Action.OBJECT_CHANGED,
        created=[emails.get(i, i) for i in sorted(added)],
        removed=[emails.get(i, i) for i in sorted(removed)],
    )


def audit_group_change(
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
