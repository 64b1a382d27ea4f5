"""SCIM users of one directory source. The SCIM `id` is the identity's id; the identity row holds what
policy reads (email, name, active, manager, attributes), the record what the provider sent. A source
only writes identities it owns: an email another source owns is a 409 `uniqueness` conflict, audited.
Every change is audited with the source as the actor and queued for re-evaluation, so grants that no
longer hold are revoked by the worker. Nothing here commits."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from scim2_models import Context, EnterpriseUser, InvalidValueException, UniquenessException, User
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sluice.events.audit import Action, record
from sluice.services.directory.changes import add_blank_identity
from sluice.services.directory.scim_common import (
    SCIM_PREFIX,
    ForeignOwner,
    Page,
    apply_patch,
    narrowed_records,
    page_of,
    parse_filter,
    parse_resource,
    record_of,
    taken_key,
)
from sluice.store.people_queries import record_people_change
from sluice.store.queries import identity_by_email
from sluice.store.scim_tables import ScimRecord, ScimToken
from sluice.store.tables import Group, GroupMember, Identity

ScimUser = User[EnterpriseUser]
USER = "User"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NOT_LOCAL = re.compile(r"[^a-z0-9._+-]+")
# SCIM attribute -> the identity attribute flow conditions test (`{attribute: department, is: payments}`)
_ENTERPRISE_ATTRIBUTES = {
    "employee_number": "employeeNumber",
    "cost_center": "costCenter",
    "organization": "organization",
    "division": "division",
    "department": "department",
}
_CORE_ATTRIBUTES = {"title": "title", "user_type": "userType", "locale": "locale"}
SCIM_ATTRIBUTES = frozenset({*_ENTERPRISE_ATTRIBUTES.values(), *_CORE_ATTRIBUTES.values()})


def scim_attributes(session: Session) -> frozenset[str]:
    """The attributes SCIM users may carry, once a SCIM source exists: a flow may test them before the
    identity provider has pushed anyone."""
    return SCIM_ATTRIBUTES if session.scalar(select(ScimToken.id).limit(1)) is not None else frozenset()


def _email_of(user: ScimUser, source: str) -> str:
    """The primary email, else any email, else userName when it is an address; a user with none (a
    service account, an employee number as userName) gets `<userName>@<source>.scim.invalid`, an
    address that can never receive mail (RFC 2606)."""
    emails = user.emails or []
    candidates = [e.value for e in emails if e.primary] + [e.value for e in emails] + [user.user_name]
    for candidate in candidates:
        if candidate and _EMAIL.match(candidate.strip()):
            return candidate.strip().lower()
    local = _NOT_LOCAL.sub("-", (user.user_name or "").strip().lower()).strip("-.")[:200]
    if not local:
        raise InvalidValueException(detail="a user needs an email address: as userName or in emails[].value")
    return f"{local}@{source.removeprefix(SCIM_PREFIX)}.scim.invalid"


def _display_name(user: ScimUser) -> str:
    if user.display_name:
        return user.display_name[:200]
    name = user.name
    if name is None:
        return ""
    if name.formatted:
        return name.formatted[:200]
    return " ".join(p for p in (name.given_name, name.family_name) if p)[:200]


def _manager_email(session: Session, user: ScimUser) -> str | None:
    extension = user[EnterpriseUser]
    manager = extension.manager if extension is not None else None
    value = (manager.value or "").strip() if manager is not None else ""
    if not value:
        return None
    row = session.get(Identity, value)
    if row is not None:
        return row.email
    return value.lower() if _EMAIL.match(value) else None


def _attributes(user: ScimUser) -> dict[str, str]:
    found: dict[str, str] = {}
    extension = user[EnterpriseUser]
    for field, name in _ENTERPRISE_ATTRIBUTES.items():
        value = getattr(extension, field, None) if extension is not None else None
        if value not in (None, ""):
            found[name] = str(value)[:500]
    for field, name in _CORE_ATTRIBUTES.items():
        value = getattr(user, field, None)
        if value not in (None, ""):
            found[name] = str(value)[:500]
    return found


def _payload(user: ScimUser) -> dict[str, Any]:
    """What is kept of a user: everything the provider may read back (never a password)."""
    data = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for key in ("id", "meta", "groups"):
        data.pop(key, None)
    return data


def _groups_of(session: Session, source: str, identity_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = defaultdict(list)
    rows = session.execute(
        select(GroupMember.identity_id, Group.id, Group.name)
        .join(Group, Group.id == GroupMember.group_id)
        .where(GroupMember.source == source, GroupMember.identity_id.in_(list(identity_ids)))
        .order_by(Group.name)
    )
    for identity_id, group_id, name in rows:
        found[identity_id].append({"value": group_id, "display": name, "type": "direct"})
    return found


def _resource(row: ScimRecord, identity: Identity, groups: list[dict[str, str]]) -> ScimUser:
    data = {
        **row.payload,
        "id": row.id,
        "meta": {
            "resourceType": USER,
            "created": row.created_at.isoformat(),
            "lastModified": row.updated_at.isoformat(),
        },
    }
    if "active" in row.payload or not identity.active:  # left out by the provider: active
        data["active"] = identity.active
    if groups:
        data["groups"] = groups
    return ScimUser.model_validate(data)


def user_resources(session: Session, records: Sequence[ScimRecord]) -> list[ScimUser]:
    if not records:
        return []
    ids = [r.id for r in records]
    identities = {i.id: i for i in session.scalars(select(Identity).where(Identity.id.in_(ids)))}
    groups = _groups_of(session, records[0].source, ids)
    return [_resource(row, identities[row.id], groups.get(row.id, [])) for row in records]


def get_user(session: Session, *, source: str, user_id: str) -> ScimUser:
    return user_resources(session, [record_of(session, source=source, kind=USER, resource_id=user_id)])[0]


def list_users(
    session: Session, *, source: str, filter_text: str | None, start_index: int | None, count: int | None
) -> Page[ScimUser]:
    scim_filter = parse_filter(ScimUser, filter_text)
    records = narrowed_records(session, source=source, kind=USER, scim_filter=scim_filter)
    return page_of(
        records, lambda rows: user_resources(session, rows), scim_filter, start_index=start_index, count=count
    )


def create_user(session: Session, *, source: str, body: Any, now: datetime) -> ScimUser:
    user = parse_resource(ScimUser, body, Context.RESOURCE_CREATION_REQUEST)
    return _store(session, source=source, row=None, user=user, now=now)


def replace_user(session: Session, *, source: str, user_id: str, body: Any, now: datetime) -> ScimUser:
    row = record_of(session, source=source, kind=USER, resource_id=user_id)
    user = parse_resource(ScimUser, body, Context.RESOURCE_REPLACEMENT_REQUEST)
    return _store(session, source=source, row=row, user=user, now=now)


def patch_user(session: Session, *, source: str, user_id: str, body: Any, now: datetime) -> ScimUser:
    row = record_of(session, source=source, kind=USER, resource_id=user_id)
    user = user_resources(session, [row])[0]
    if apply_patch(ScimUser, user, body):
        return _store(session, source=source, row=row, user=user, now=now)
    return user


def delete_user(session: Session, *, source: str, user_id: str, now: datetime) -> None:
    """The identity is deactivated and leaves this source's groups (identities are never deleted: the
    history of grants refers to them); the user is gone from SCIM."""
    row = record_of(session, source=source, kind=USER, resource_id=user_id)
    identity = session.get(Identity, row.id)
    session.execute(
        delete(GroupMember).where(GroupMember.identity_id == row.id, GroupMember.source == source)
    )
    session.delete(row)
    if identity is not None:
        identity.active = False
        identity.updated_at = now
        _audit(session, source, identity.email, ["deleted"], now, action=Action.OBJECT_REMOVED)
        record_people_change(
            session, identity_id=identity.id, reason=f"{source} deleted user {identity.email}", now=now
        )


def _identity_for(
    session: Session, *, source: str, row: ScimRecord | None, email: str, now: datetime
) -> Identity:
    """The identity this user writes: its own, or a new one. An email held by another identity is a
    conflict: owned by another source (audited), or by another user of this source."""
    holder = identity_by_email(session, email)
    own = session.get(Identity, row.id) if row is not None else None
    if holder is not None and holder is not own:
        if holder.source != source:
            raise ForeignOwner(source=source, owner=holder.source, kind="identity", name=email, now=now)
        if session.get(ScimRecord, holder.id) is not None:
            raise UniquenessException(detail=f"another user of this directory has the email {email}")
        return holder  # deleted from SCIM earlier and provisioned again
    if own is not None:
        return own
    return add_blank_identity(session, email, source=source, now=now)


def _store(
    session: Session, *, source: str, row: ScimRecord | None, user: ScimUser, now: datetime
) -> ScimUser:
    key = (user.user_name or "").strip().lower()
    if not key:
        raise InvalidValueException(detail="userName is required")
    taken_key(session, source=source, kind=USER, key=key, other_than=row.id if row else None)
    email = _email_of(user, source)
    identity = _identity_for(session, source=source, row=row, email=email, now=now)
    created = row is None
    if row is None:
        row = ScimRecord(
            id=identity.id,
            kind=USER,
            source=source,
            key=key,
            external_id=None,
            payload={},
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    row.key, row.external_id, row.payload, row.updated_at = key, user.external_id, _payload(user), now
    wanted = {
        "email": email,
        "name": _display_name(user),
        "active": True if user.active is None else bool(user.active),
        "manager_email": _manager_email(session, user),
        "attributes": _attributes(user),
    }
    if wanted["manager_email"] == email:
        raise InvalidValueException(detail="a user cannot be their own manager")
    changed = [key for key, value in wanted.items() if getattr(identity, key) != value]
    for field in changed:
        setattr(identity, field, wanted[field])
    if identity.source != source:
        identity.source = source
    if created or changed:
        identity.updated_at = now
        words = ["created"] if created else [c.removesuffix("_email") for c in changed]
        action = Action.OBJECT_CREATED if created else Action.OBJECT_CHANGED
        _audit(session, source, email, words, now, action=action)
        record_people_change(
            session, identity_id=identity.id, reason=f"{source} {', '.join(words)} {email}", now=now
        )
    groups = [] if created else _groups_of(session, source, [row.id]).get(row.id, [])
    return _resource(row, identity, groups)


def _audit(
    session: Session, source: str, email: str, changed: list[str], now: datetime, *, action: Action
) -> None:
    extra: dict[str, Any] = {} if changed in (["created"], ["deleted"]) else {"changed": changed}
    record(
        session,
        now=now,
        actor=source,
        action=action,
        subject_type="identity",
        subject_id=email[:200],
        kind="identity",
        name=email,
        source=source,
        **extra,
    )
