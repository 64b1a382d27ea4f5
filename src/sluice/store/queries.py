"""Business rules over the tables, written once: the directory snapshot of a person, flows, a request's
grants. The grant states are in `store/grant_states.py`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select
from sqlalchemy.orm import Session

from sluice.domain.policy import Person
from sluice.store.tables import (
    AccessFlow,
    AccessRequest,
    Grant,
    Group,
    GroupMember,
    Identity,
    Installation,
)


def installation_id(session: Session) -> str:
    """This store's installation id (made with the schema; the same for every process on the store)."""
    found = session.scalar(select(Installation.id))
    if found is None:
        raise RuntimeError("the store has no installation id: run `sluice db upgrade`")
    return found


# Asked on every request, so built once with their values bound at execution (building a statement
# costs SQLAlchemy about as much time as running it).
_IDENTITY_BY_EMAIL = select(Identity).where(func.lower(Identity.email) == bindparam("email"))
_GROUP_NAMES = (
    select(Group.name)
    .join(GroupMember, GroupMember.group_id == Group.id)
    .where(
        GroupMember.identity_id == bindparam("identity_id"),
        or_(GroupMember.expires_at.is_(None), GroupMember.expires_at > bindparam("now")),
    )
)


def identity_by_email(session: Session, email: str) -> Identity | None:
    return session.scalar(_IDENTITY_BY_EMAIL, {"email": email.strip().lower()})


def group_names_of(session: Session, identity_id: str, now: datetime) -> frozenset[str]:
    return frozenset(session.scalars(_GROUP_NAMES, {"identity_id": identity_id, "now": now}))


def person_of(session: Session, identity: Identity, now: datetime, *, on_call: bool = True) -> Person:
    """The directory snapshot of one identity that the policy evaluator reads (with its attributes and
    the schedules it is on call for now). `on_call=False` leaves the shifts empty without reading the
    schedules, for a caller whose conditions name no shift."""
    from sluice.store.people_queries import shifts_now

    return Person(
        email=identity.email,
        active=identity.active,
        groups=group_names_of(session, identity.id, now),
        manager=identity.manager_email,
        name=identity.name,
        attributes=dict(identity.attributes or {}),
        shifts=shifts_now(session, now).get(identity.email.lower(), frozenset()) if on_call else frozenset(),
    )


def all_flows(session: Session) -> Sequence[AccessFlow]:
    return session.scalars(select(AccessFlow).order_by(AccessFlow.name)).all()


def grants_of_request(request_id: str) -> Select[Grant]:
    return select(Grant).where(Grant.request_id == request_id).order_by(Grant.id)


def break_glass_unreviewed() -> ColumnElement[bool]:
    """A break-glass request nobody has reviewed yet (the review list, the admin view and the gauge)."""
    return AccessRequest.break_glass.is_(True) & AccessRequest.reviewed_at.is_(None)
