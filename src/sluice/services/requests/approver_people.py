"""Who an approval policy's approvers are, as people, now: the members of a group, the requester's
manager, who is on call, the owners of the resources or their integrations, before separation of
duties is applied (the engine, `approvals.py`, applies it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sluice.domain.approval import ApprovalContext, ApprovalTier, Approver, approver_matches
from sluice.domain.people import Person
from sluice.store.people_queries import on_call, people_snapshot
from sluice.store.tables import Group, GroupMember, Identity


def _members(session: Session, group: str) -> list[str]:
    return list(
        session.scalars(
            select(Identity.email)
            .join(GroupMember, GroupMember.identity_id == Identity.id)
            .join(Group, Group.id == GroupMember.group_id)
            .where(Group.name == group)
        )
    )


def _names_to_emails(session: Session, names: frozenset[str]) -> set[str]:
    emails: set[str] = set()
    for name in names:
        emails.update([name] if "@" in name else _members(session, name))
    return emails


def _named_emails(
    session: Session, approver: Approver, ctx: ApprovalContext, now: datetime
) -> set[str] | None:
    """The emails an approver names as of now; None when it is a condition anyone may meet."""
    if approver.user:
        return {approver.user.lower()}
    if approver.group:
        return set(_members(session, approver.group))
    if approver.manager:
        return {ctx.requester.manager.lower()} if ctx.requester.manager else set()
    if approver.shift:
        return set(on_call(session, approver.shift, now) or [])
    if approver.resource_owner or approver.integration_owner:
        owners = ctx.resource_owners if approver.resource_owner else ctx.integration_owners
        return {email for names in owners for email in _names_to_emails(session, names)}
    return None


def matching_people(
    session: Session, ctx: ApprovalContext, approvers: Sequence[Approver], now: datetime
) -> list[Person]:
    """Everyone who matches one of `approvers` now, before separation of duties is applied. The store
    is narrowed to the people the approvers name, unless one of them is a condition anyone may meet."""
    named = [_named_emails(session, a, ctx, now) for a in approvers]
    everyone = any(n is None for n in named)
    lowered = {e.lower() for emails in named if emails for e in emails}
    ids = None
    if not everyone:
        ids = list(
            session.scalars(select(Identity.id).where(func.lower(Identity.email).in_(sorted(lowered))))
        )
    people = people_snapshot(session, now, ids).values()
    return sorted(
        (
            p
            for p in people
            if (everyone or p.email.lower() in lowered)
            and any(approver_matches(a, p, ctx) for a in approvers)
        ),
        key=lambda p: p.email,
    )


def approvers_in(tiers: Sequence[ApprovalTier]) -> list[Approver]:
    return [a for tier in tiers for group in tier.groups for a in group.approvers]
