"""Business rules over the tables, written once: "live grant", "needs target work", "due to expire"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from sluice.domain.policy import Person
from sluice.domain.states import Actual, Desired, RequestStatus
from sluice.store.tables import (
    AccessFlow,
    AccessRequest,
    Grant,
    Group,
    GroupMember,
    Identity,
    Installation,
)


def grant_is_live() -> ColumnElement[bool]:
    """A grant that holds, or may yet hold, access in the target."""
    return or_(
        Grant.desired.in_([Desired.PENDING, Desired.ACTIVE]),
        Grant.actual.in_([Actual.ACTIVE, Actual.UNKNOWN]),
    )


def grant_justifies_principal() -> ColumnElement[bool]:
    """A grant whose principal may rightly be in the target now: it should be active, or the worker
    has yet to take it away. A principal of this installation that no such grant claims is an orphan;
    a pending grant has touched nothing yet, so it justifies nothing either."""
    return or_(
        Grant.desired == Desired.ACTIVE,
        and_(Grant.desired == Desired.REVOKED, Grant.actual.in_([Actual.ACTIVE, Actual.UNKNOWN])),
    )


def installation_id(session: Session) -> str:
    """This store's installation id (made with the schema; the same for every process on the store)."""
    found = session.scalar(select(Installation.id))
    if found is None:
        raise RuntimeError("the store has no installation id: run `sluice db upgrade`")
    return found


def grant_work_due(now: datetime) -> ColumnElement[bool]:
    """Rows where what should be differs from what is known to be, and whose turn has come, whether
    a worker holds them now or not."""
    differs = or_(
        and_(
            Grant.desired == Desired.ACTIVE,
            Grant.actual != Actual.ACTIVE,
        ),
        and_(Grant.desired == Desired.REVOKED, Grant.actual.in_([Actual.ACTIVE, Actual.UNKNOWN])),
    )
    turn = or_(Grant.next_attempt_at.is_(None), Grant.next_attempt_at <= now)
    return and_(differs, turn)


def grant_needs_work(now: datetime) -> ColumnElement[bool]:
    """Rows whose work is due and that no worker holds (or whose holder's claim lapsed)."""
    unclaimed = or_(Grant.claimed_until.is_(None), Grant.claimed_until <= now)
    return and_(grant_work_due(now), unclaimed)


def grant_due_to_expire(now: datetime) -> ColumnElement[bool]:
    return and_(Grant.desired == Desired.ACTIVE, Grant.ends_at.is_not(None), Grant.ends_at <= now)


def next_wakeup(session: Session, now: datetime) -> datetime | None:
    """The earliest moment at which some grant or request will need the worker."""
    candidates = [
        session.scalar(select(func.min(Grant.ends_at)).where(Grant.desired == Desired.ACTIVE)),
        session.scalar(
            select(func.min(Grant.next_attempt_at)).where(
                or_(
                    and_(Grant.desired == Desired.ACTIVE, Grant.actual != Actual.ACTIVE),
                    and_(Grant.desired == Desired.REVOKED, Grant.actual.in_([Actual.ACTIVE, Actual.UNKNOWN])),
                )
            )
        ),
        session.scalar(
            select(func.min(Grant.claimed_until)).where(Grant.claimed_until.is_not(None), grant_is_live())
        ),
        session.scalar(
            select(func.min(AccessRequest.pending_until)).where(AccessRequest.status == RequestStatus.PENDING)
        ),
    ]
    present = [c for c in candidates if c is not None]
    return min(present) if present else None


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
