"""Directory updates through the API (until an IdP sync lands): identities, their manager and
attributes, groups and their members. Every change is audited and queued for re-evaluation, the same
path an IdP sync uses, so grants and pending requests follow. Nothing here commits."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict, InvalidInput, NotFound
from sluice.events.audit import Action, record
from sluice.services.directory.sources import owned_by_directory, source_words
from sluice.store.people_queries import record_people_change
from sluice.store.queries import identity_by_email
from sluice.store.tables import Group, GroupMember, Identity
from sluice.store.types import new_id

DIRECTORY_SOURCE = "config"  # memberships the directory owns (grants add `grant:<id>` ones)
API_SOURCE = "api"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
RESERVED_ATTRIBUTES = frozenset({"user", "name", "group", "manager", "shift", "email"})
# What one identity or group may hold, whether it comes from the API or the config file.
MAX_ATTRIBUTES = 100
MAX_GROUPS_PER_IDENTITY = 500
MAX_MEMBERS = 10_000


def _email(value: str) -> str:
    cleaned = value.strip().lower()
    if not _EMAIL.match(cleaned):
        raise InvalidInput(f"{value!r} is not an email address")
    return cleaned


def _attributes(values: dict[str, Any]) -> dict[str, str]:
    for key, value in values.items():
        if not _ATTRIBUTE.match(key) or key in RESERVED_ATTRIBUTES:
            raise InvalidInput(
                f"attribute name {key!r} must start with a letter, hold letters, digits and '_.-', and "
                f"not be one of {', '.join(sorted(RESERVED_ATTRIBUTES))}"
            )
        if not isinstance(value, str | int | float | bool) or len(str(value)) > 500:
            raise InvalidInput(f"attribute {key!r} holds text of at most 500 characters")
    return {k: str(v) for k, v in values.items()}


def _audit(session: Session, *, actor: str, now: datetime, kind: str, name: str, changed: list[str]) -> None:
    record(
        session,
        now=now,
        actor=actor,
        action=Action.OBJECT_CHANGED if changed != ["created"] else Action.OBJECT_CREATED,
        subject_type=kind,
        subject_id=name[:200],
        kind=kind,
        name=name,
        changed=changed,
    )


def _refuse_directory_source(kind: str, name: str, source: str) -> None:
    """Identities and groups an identity provider pushes (SCIM) or a directory holds (LDAP) change only
    through it."""
    if owned_by_directory(source):
        raise Conflict(
            f"{kind} {name} is owned by {source_words(source)}; "
            "change it in the identity provider or directory it comes from"
        )


def _group(session: Session, name: str, *, create: bool, now: datetime) -> Group:
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        if not create:
            raise NotFound(f"no group {name!r}")
        if not name.strip() or len(name) > 200:
            raise InvalidInput(f"group name {name!r} must be 1 to 200 characters")
        group = Group(id=new_id("grp"), name=name, description="", source=API_SOURCE)
        session.add(group)
        session.flush()
    return group


def set_identity(
    session: Session,
    *,
    email: str,
    fields: dict[str, Any],
    replace: bool,
    actor: str,
    now: datetime,
) -> Identity:
    """PUT (`replace`: fields left out take their defaults) or PATCH an identity. Fields: name,
    active, manager, attributes, groups."""
    email = _email(email)
    unknown = set(fields) - {"name", "active", "manager", "attributes", "groups"}
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(sorted(unknown))}; "
            "fields: name, active, manager, attributes, groups"
        )
    identity = identity_by_email(session, email)
    if identity is not None:
        _refuse_directory_source("identity", email, identity.source)
    changed: list[str] = []
    if identity is None:
        identity = add_blank_identity(session, email, source=API_SOURCE, now=now)
        session.flush()
        changed.append("created")
    wanted: dict[str, Any] = (
        {"name": "", "active": True, "manager": None, "attributes": {}} if replace else {}
    )
    wanted.update({k: v for k, v in fields.items() if k != "groups"})
    if "manager" in wanted and wanted["manager"] is not None:
        wanted["manager"] = _email(wanted["manager"])
        if wanted["manager"] == email:
            raise InvalidInput("an identity cannot be its own manager")
    if "attributes" in wanted:
        wanted["attributes"] = _attributes(wanted["attributes"] or {})
    columns = {"name": "name", "active": "active", "manager": "manager_email", "attributes": "attributes"}
    for key, value in wanted.items():
        if getattr(identity, columns[key]) != value:
            setattr(identity, columns[key], value)
            changed.append(key)
    touches_groups = "groups" in fields or replace
    if touches_groups and _set_memberships(session, identity, fields.get("groups") or [], now):
        changed.append("groups")
    if changed:
        identity.updated_at = now
        _audit(session, actor=actor, now=now, kind="identity", name=email, changed=changed)
        record_people_change(
            session, identity_id=identity.id, reason=f"identity {email}: {', '.join(changed)}", now=now
        )
    return identity


def _set_memberships(session: Session, identity: Identity, names: Iterable[str], now: datetime) -> bool:
    wanted = {_group(session, n, create=True, now=now).id for n in dict.fromkeys(names)}
    current = set(
        session.scalars(
            select(GroupMember.group_id).where(
                GroupMember.identity_id == identity.id, GroupMember.source.in_([DIRECTORY_SOURCE, API_SOURCE])
            )
        )
    )
    for group_id in wanted - current:
        session.add(
            GroupMember(group_id=group_id, identity_id=identity.id, source=API_SOURCE, expires_at=None)
        )
    gone = current - wanted
    if gone:
        session.execute(
            delete(GroupMember).where(
                GroupMember.identity_id == identity.id,
                GroupMember.group_id.in_(gone),
                GroupMember.source.in_([DIRECTORY_SOURCE, API_SOURCE]),
            )
        )
    return bool(wanted ^ current)


def set_group(
    session: Session,
    *,
    name: str,
    description: str | None,
    members: list[str] | None,
    add: list[str],
    remove: list[str],
    actor: str,
    now: datetime,
) -> Group:
    """PUT (`members` given: exactly these) or PATCH (`add` / `remove`) a group's directory members."""
    group = _group(session, name, create=True, now=now)
    _refuse_directory_source("group", name, group.source)
    changed = []
    if description is not None and description != group.description:
        group.description = description
        changed.append("description")
    rows = session.execute(
        select(GroupMember.identity_id, Identity.email)
        .join(Identity, Identity.id == GroupMember.identity_id)
        .where(GroupMember.group_id == group.id, GroupMember.source.in_([DIRECTORY_SOURCE, API_SOURCE]))
    ).all()
    current = {email.lower(): identity_id for identity_id, email in rows}
    wanted = set(current) if members is None else {_email(m) for m in members}
    wanted |= {_email(m) for m in add}
    wanted -= {_email(m) for m in remove}
    touched: list[str] = []
    for email in sorted(wanted - set(current)):
        identity = identity_by_email(session, email)
        if identity is None:
            raise NotFound(f"no identity {email!r}; create it first under /identities")
        session.add(
            GroupMember(group_id=group.id, identity_id=identity.id, source=API_SOURCE, expires_at=None)
        )
        touched.append(identity.id)
    for email in sorted(set(current) - wanted):
        session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group.id,
                GroupMember.identity_id == current[email],
                GroupMember.source.in_([DIRECTORY_SOURCE, API_SOURCE]),
            )
        )
        touched.append(current[email])
    if touched:
        changed.append("members")
    if changed:
        _audit(session, actor=actor, now=now, kind="group", name=name, changed=changed)
    for identity_id in touched:
        record_people_change(
            session, identity_id=identity_id, reason=f"membership of group {name} changed", now=now
        )
    return group


def add_blank_identity(session: Session, email: str, *, source: str, now: datetime) -> Identity:
    """A new active identity with only its email, owned by `source`; the caller fills in the rest."""
    identity = Identity(
        id=new_id("id"),
        email=email,
        name="",
        active=True,
        attributes={},
        source=source,
        created_at=now,
        updated_at=now,
    )
    session.add(identity)
    return identity
