"""Who an approval policy's approvers are, as people, now: the members of a group, the requester's
manager, who is on call, the owners of the resources or their integrations, before separation of
duties is applied (the engine, `approvals.py`, applies it).

`ApproverDirectory` reads each group, schedule and person once however many requests it is asked
about, so a list of requests costs a few queries, not a few per request."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sluice.domain.approval import ApprovalContext, ApprovalTier, Approver, approver_matches
from sluice.domain.people import Person
from sluice.store.people_queries import on_call, people_snapshot
from sluice.store.tables import Group, GroupMember, Identity

_CHUNK = 500  # ids bound into one IN list


def chunks(values: Iterable[str], size: int = _CHUNK) -> list[list[str]]:
    ordered = sorted(set(values))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


class ApproverDirectory:
    """The directory as approvers are matched against it at `now`, read lazily and kept."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now
        self._members: dict[str, list[str]] = {}
        self._on_call: dict[str, list[str]] = {}
        self._people: dict[str, Person | None] = {}  # lower-cased email -> person (None: nobody)
        self._everyone: list[Person] | None = None

    def members(self, group: str) -> list[str]:
        if group not in self._members:
            self._members[group] = list(
                self.session.scalars(
                    select(Identity.email)
                    .join(GroupMember, GroupMember.identity_id == Identity.id)
                    .join(Group, Group.id == GroupMember.group_id)
                    .where(Group.name == group)
                )
            )
        return self._members[group]

    def on_call(self, shift: str) -> list[str]:
        if shift not in self._on_call:
            self._on_call[shift] = on_call(self.session, shift, self.now) or []
        return self._on_call[shift]

    def _names_to_emails(self, names: frozenset[str]) -> set[str]:
        emails: set[str] = set()
        for name in names:
            emails.update([name] if "@" in name else self.members(name))
        return emails

    def named_emails(self, approver: Approver, ctx: ApprovalContext) -> set[str] | None:
        """The emails an approver names as of now; None when it is a condition anyone may meet."""
        if approver.user:
            return {approver.user.lower()}
        if approver.group:
            return set(self.members(approver.group))
        if approver.manager:
            return {ctx.requester.manager.lower()} if ctx.requester.manager else set()
        if approver.shift:
            return set(self.on_call(approver.shift))
        if approver.resource_owner or approver.integration_owner:
            owners = ctx.resource_owners if approver.resource_owner else ctx.integration_owners
            return {email for names in owners for email in self._names_to_emails(names)}
        return None

    def load(self, emails: Iterable[str]) -> None:
        """Reads the people with these emails that are not read yet, in a few queries."""
        missing = {e.lower() for e in emails} - self._people.keys()
        for part in chunks(missing):
            ids = list(self.session.scalars(select(Identity.id).where(func.lower(Identity.email).in_(part))))
            found = {p.email.lower(): p for p in people_snapshot(self.session, self.now, ids).values()}
            self._people.update({email: found.get(email) for email in part})

    def everyone(self) -> list[Person]:
        if self._everyone is None:
            self._everyone = list(people_snapshot(self.session, self.now).values())
        return self._everyone

    def candidates(self, ctx: ApprovalContext, approvers: Sequence[Approver]) -> list[Person]:
        """The people `approvers` name for this request, unmatched yet."""
        named = [self.named_emails(a, ctx) for a in approvers]
        if any(n is None for n in named):
            return self.everyone()
        lowered = {e.lower() for emails in named if emails for e in emails}
        self.load(lowered)
        return [p for e in lowered if (p := self._people.get(e)) is not None]

    def matching(self, ctx: ApprovalContext, approvers: Sequence[Approver]) -> list[Person]:
        """Everyone who matches one of `approvers` now, before separation of duties is applied."""
        found = self.candidates(ctx, approvers)
        return sorted((p for p in found if any(approver_matches(a, p, ctx) for a in approvers)), key=_email)


def _email(person: Person) -> str:
    return person.email


def matching_people(
    session: Session, ctx: ApprovalContext, approvers: Sequence[Approver], now: datetime
) -> list[Person]:
    """Everyone who matches one of `approvers` now, before separation of duties is applied. The store
    is narrowed to the people the approvers name, unless one of them is a condition anyone may meet."""
    return ApproverDirectory(session, now).matching(ctx, approvers)


def approvers_in(tiers: Sequence[ApprovalTier]) -> list[Approver]:
    return [a for tier in tiers for group in tier.groups for a in group.approvers]
