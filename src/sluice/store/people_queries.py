"""Questions about people asked of the store, written once: who is on call, directory snapshots in
bulk, resource owners, and the queue of changes to re-evaluate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from sluice.domain.people import Person
from sluice.domain.shifts import ScheduleSpec, Shift, parse_ical
from sluice.store.people_tables import PeopleChange, Schedule
from sluice.store.tables import Group, GroupMember, Identity, Integration, Resource
from sluice.store.targeting_tables import ResourceTag

OWNER_TAG = "owner"


@lru_cache(maxsize=256)
def _parsed_schedule(spec_text: str, feed_text: str | None) -> tuple[ScheduleSpec, list[Shift] | None]:
    """A schedule from its stored texts, with its feed's shifts (None for a plain rotation). Cached by
    the texts themselves, so a changed spec or a newly read feed is seen at once; callers only read
    what they get."""
    spec = ScheduleSpec.model_validate_json(spec_text)
    return spec, (parse_ical(feed_text or "") if spec.ical else None)


_SCHEDULE_TEXTS = select(Schedule.name, cast(Schedule.spec, Text), Schedule.feed_text)


def schedule_specs(session: Session) -> list[tuple[ScheduleSpec, list[Shift] | None]]:
    """Every schedule with its feed's shifts (None for a plain rotation)."""
    rows = session.execute(_SCHEDULE_TEXTS.order_by(Schedule.name))
    return [_parsed_schedule(spec, feed) for _, spec, feed in rows]


def on_call(session: Session, schedule: str, at: datetime) -> list[str] | None:
    """Emails on call for `schedule` at `at`; None when there is no such schedule."""
    row = session.execute(_SCHEDULE_TEXTS.where(Schedule.name == schedule)).first()
    if row is None:
        return None
    spec, feed = _parsed_schedule(row[1], row[2])
    return spec.on_call(at, feed)


def shifts_now(session: Session, now: datetime) -> dict[str, frozenset[str]]:
    """Email -> the schedules that person is on call for at `now`."""
    found: dict[str, set[str]] = defaultdict(set)
    for spec, feed in schedule_specs(session):
        for email in spec.on_call(now, feed):
            found[email].add(spec.name)
    return {email: frozenset(names) for email, names in found.items()}


def next_shift_change(session: Session, now: datetime) -> datetime | None:
    moments = [m for spec, feed in schedule_specs(session) if (m := spec.next_change(now, feed))]
    return min(moments) if moments else None


def people_snapshot(
    session: Session, now: datetime, identity_ids: Iterable[str] | None = None
) -> dict[str, Person]:
    """Identity id -> the Person the policy evaluator reads, for many identities in three queries."""
    query = select(Identity)
    ids = None if identity_ids is None else sorted(set(identity_ids))
    if ids is not None:
        query = query.where(Identity.id.in_(ids))
    identities = list(session.scalars(query))
    groups: dict[str, set[str]] = defaultdict(set)
    membership = (
        select(GroupMember.identity_id, Group.name)
        .join(Group, Group.id == GroupMember.group_id)
        .where(or_(GroupMember.expires_at.is_(None), GroupMember.expires_at > now))
    )
    if ids is not None:
        membership = membership.where(GroupMember.identity_id.in_(ids))
    for identity_id, name in session.execute(membership):
        groups[identity_id].add(name)
    shifts = shifts_now(session, now)
    return {
        i.id: Person(
            email=i.email,
            active=i.active,
            groups=frozenset(groups[i.id]),
            manager=i.manager_email,
            name=i.name,
            attributes=dict(i.attributes or {}),
            shifts=shifts.get(i.email.lower(), frozenset()),
        )
        for i in identities
    }


def known_attributes(session: Session) -> set[str]:
    """Attribute names some identity in the store carries."""
    names: set[str] = set()
    for attributes in session.scalars(select(Identity.attributes)):
        names.update((attributes or {}).keys())
    return names


def owners_of_resources(session: Session, resource_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """Resource id -> who owns it: the value(s) of its `owner` tag (emails or group names, comma
    separated), falling back to its integration's owner."""
    ids = sorted(set(resource_ids))
    tags = dict(
        session.execute(
            select(ResourceTag.resource_id, ResourceTag.value).where(
                ResourceTag.resource_id.in_(ids), ResourceTag.key == OWNER_TAG
            )
        ).all()
    )
    integration_owner = integration_owners_of(session, ids)
    found = {}
    for resource_id in ids:
        tag = tags.get(resource_id)
        if tag:
            found[resource_id] = frozenset(_owner_names(tag))
        else:
            found[resource_id] = integration_owner.get(resource_id, frozenset())
    return found


def integration_owners_of(session: Session, resource_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    rows = session.execute(
        select(Resource.id, Integration.owner)
        .join(Integration, Integration.id == Resource.integration_id)
        .where(Resource.id.in_(sorted(set(resource_ids))))
    )
    return {rid: frozenset(_owner_names(owner or "")) for rid, owner in rows}


def _owner_names(text: str) -> list[str]:
    return [p.strip().lower() if "@" in p else p.strip() for p in text.split(",") if p.strip()]


def record_people_change(session: Session, *, identity_id: str | None, reason: str, now: datetime) -> None:
    """Queue a re-evaluation: of one identity, or (None) of everyone."""
    session.add(PeopleChange(identity_id=identity_id, reason=reason[:500], created_at=now))


def pending_people_changes(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PeopleChange)) or 0
