"""Policy questions asked against the store *now*: the flows, who may approve a request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict
from sluice.domain.flows import FlowSpec
from sluice.domain.people import Subject
from sluice.domain.policy import Person, may_approve
from sluice.services.bundles import current_flows
from sluice.store.queries import group_names_of, person_of
from sluice.store.tables import AccessFlow, Group, GroupMember, Identity


def load_flows(session: Session) -> list[FlowSpec]:
    """Every flow, with its bundle and scope references resolved to what they name now. One query
    reads the stored texts; they are parsed (and resolved) again only when one of them changed."""
    return current_flows(session)


def _mentions_shift(subject: Subject) -> bool:
    if subject.shift or subject.attribute == "shift":
        return True
    return any(_mentions_shift(child) for child in (subject.all or []) + (subject.any or []))


def requesting_needs_shifts(flows: list[FlowSpec]) -> bool:
    """Whether asking under these flows depends on who is on call: some requester or grantee
    condition names a shift. When none does, the schedules need not be read to check a request."""
    return any(
        _mentions_shift(subject) for flow in flows for subject in (*flow.requesters, *(flow.grantees or ()))
    )


def load_flow(session: Session, name: str) -> FlowSpec:
    row = session.scalar(select(AccessFlow).where(AccessFlow.name == name))
    if row is None:
        raise Conflict(f"the access flow {name!r} no longer exists, so nobody can act on this request")
    return FlowSpec.model_validate(row.spec)


def approvers_of(session: Session, flow: FlowSpec, requester: Person, now: datetime) -> list[str]:
    """Emails of everyone who may approve a request by `requester` under `flow`, as of now."""
    emails: set[str] = set()
    for subject in flow.approvers:
        if subject.user:
            emails.add(subject.user)
        elif subject.group:
            emails.update(
                session.scalars(
                    select(Identity.email)
                    .join(GroupMember, GroupMember.identity_id == Identity.id)
                    .join(Group, Group.id == GroupMember.group_id)
                    .where(Group.name == subject.group)
                )
            )
        elif subject.manager and requester.manager:
            emails.add(requester.manager)
    result = []
    for email in sorted(emails):
        identity = session.scalar(select(Identity).where(Identity.email == email))
        if identity is None:
            continue
        candidate = Person(identity.email, identity.active, group_names_of(session, identity.id, now))
        if may_approve(flow, candidate, requester):
            result.append(identity.email)
    return result


def can_approve(
    session: Session, flow: FlowSpec, approver: Identity, requester: Identity, now: datetime
) -> bool:
    return may_approve(flow, person_of(session, approver, now), person_of(session, requester, now))
