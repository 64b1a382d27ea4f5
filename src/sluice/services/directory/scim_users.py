"""SCIM users of one directory source. The SCIM `id` is the identity's id; the identity row holds what
policy reads (email, name, active, manager, attributes), the record what the provider sent. A source
only writes identities it owns: an email another source owns is a 409 `uniqueness` conflict, audited.
Every change is audited with the source as the actor and queued for re-evaluation, so grants that no
longer hold are revoked by the worker. Nothing here commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from scim2_models import Context, InvalidValueException, UniquenessException
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sluice.events.audit import Action, record
from sluice.services.directory.changes import add_blank_identity
from sluice.services.directory.scim_common import (
    ForeignOwner,
    Page,
    narrowed_records,
    page_of,
    parse_filter,
    parse_resource,
    record_of,
    taken_key,
)
from sluice.services.directory.scim_patch import apply_patch
from sluice.services.directory.scim_user_fields import (
    ScimUser,
    attributes_of,
    display_name,
    email_of,
    manager_email,
    payload_of,
)
from sluice.store.people_queries import record_people_change
from sluice.store.queries import identity_by_email
from sluice.store.scim_tables import ScimRecord
from sluice.store.tables import Group, GroupMember, Identity

USER = "User"


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
    email = email_of(user, source)
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
    row.key, row.external_id, row.payload, row.updated_at = key, user.external_id, payload_of(user), now
    wanted = {
        "email": email,
        "name": display_name(user),
        "active": True if user.active is None else bool(user.active),
        "manager_email": manager_email(session, user),
        "attributes": attributes_of(user),
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
