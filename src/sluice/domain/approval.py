"""Approval policies: who must approve a request, how many of them, and who is asked next when nobody
acts in time.

A policy is one or more tiers. The first tier is open from the moment the request is made; each
escalation tier opens `after` the previous one did, and an open tier stays open (earlier approvers may
still act). A tier holds approver groups combined as `any_of` (one satisfied group suffices) or
`all_of` (every group); a group is satisfied when `count` distinct people who match one of its
approvers have approved. A request is approved once any open tier is satisfied; a rejection by anyone
entitled to approve rejects it.

Separation of duties: nobody approves access for themselves, whoever asked. The requester and the
grantee(s) of a request never decide on it (unless the flow says `self_approval: true`), and a flow may
bar their direct reports too (`distinct_from: [requester, grantee, direct_reports]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from sluice.domain.durations import checked_duration, parse_duration
from sluice.domain.people import Person, Subject, holds
from sluice.domain.text import MAX_ITEMS, Email, Name, Token


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bar(StrEnum):
    """Why separation of duties keeps someone from deciding on a request."""

    REQUESTER = "requester"
    GRANTEE = "grantee"
    DIRECT_REPORT = "direct_reports"


DISTINCT_FROM = ("requester", "grantee", "direct_reports")


class Mode(StrEnum):
    ANY_OF = "any_of"
    ALL_OF = "all_of"


class Approver(_Strict):
    """One kind of approver: a user, a group, the requester's manager, the owner of the requested
    resources (their `owner` tag, else their integration's owner), the integration owner, whoever is
    on call for a schedule, or anyone matching an identity condition."""

    user: Email | None = None
    group: Name | None = None
    manager: bool = False
    resource_owner: bool = False
    integration_owner: bool = False
    shift: Token | None = None
    condition: Subject | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Approver:
        named = [k for k in ("user", "group", "shift", "condition") if getattr(self, k)]
        named += [k for k in ("manager", "resource_owner", "integration_owner") if getattr(self, k)]
        if len(named) != 1:
            raise ValueError(
                "name exactly one of 'user', 'group', 'shift', 'condition', 'manager: true', "
                "'resource_owner: true' or 'integration_owner: true'"
            )
        return self

    def describe(self) -> str:
        if self.user:
            return f"user {self.user}"
        if self.group:
            return f"group {self.group}"
        if self.shift:
            return f"on call for {self.shift}"
        if self.condition:
            return self.condition.describe()
        if self.manager:
            return "the requester's manager"
        return "the resource owner" if self.resource_owner else "the integration owner"

    @classmethod
    def from_subject(cls, subject: Subject) -> Approver:
        if subject.manager:
            return cls(manager=True)
        if subject.user:
            return cls(user=subject.user)
        if subject.group:
            return cls(group=subject.group)
        if subject.shift:
            return cls(shift=subject.shift)
        return cls(condition=subject)


class ApproverGroup(_Strict):
    approvers: list[Approver] = Field(min_length=1, max_length=MAX_ITEMS)
    count: int = Field(default=1, ge=1, le=20)
    name: Token = ""

    def describe(self) -> str:
        who = " or ".join(a.describe() for a in self.approvers)
        return f"{self.count} of {who}" if self.count > 1 else who


class ApprovalTier(_Strict):
    mode: Mode = Mode.ANY_OF
    groups: list[ApproverGroup] = Field(min_length=1, max_length=MAX_ITEMS)
    after: Token | None = None  # escalation tiers: how long after the previous tier this one opens

    @field_validator("after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else checked_duration(value)


class ApprovalPolicy(_Strict):
    mode: Mode = Mode.ANY_OF
    groups: list[ApproverGroup] = Field(min_length=1, max_length=MAX_ITEMS)
    escalation: list[ApprovalTier] = Field(default_factory=list, max_length=MAX_ITEMS)
    reason_required: bool = False
    self_approval: bool = False  # may the requester and grantee approve their own access? never, by default
    # who approvals must come from someone other than; the requester and grantee are always barred
    # unless `self_approval`, so what this adds is `direct_reports` (of the requester and the grantee)
    distinct_from: list[str] = Field(default_factory=list)

    @field_validator("distinct_from")
    @classmethod
    def _known_parties(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if name not in DISTINCT_FROM:
                raise ValueError(f"{name!r} is not one of: {', '.join(DISTINCT_FROM)}")
            if name in seen:
                raise ValueError(f"{name!r} is named twice in distinct_from")
            seen.add(name)
        return value

    @model_validator(mode="after")
    def _self_approval_or_distinct(self) -> ApprovalPolicy:
        named = [p for p in ("requester", "grantee") if p in self.distinct_from]
        if self.self_approval and named:
            raise ValueError(
                "self_approval: true lets the requester and the grantee approve, but distinct_from bars "
                f"{' and '.join(named)}; keep one of the two"
            )
        return self

    @model_serializer(mode="wrap")
    def _without_empty_distinct_from(self, handler: Any) -> dict[str, Any]:
        """Leaves `distinct_from` out when empty, so a policy that does not use it reads (and is
        stored, and compared by `sluice plan`) exactly as before the key existed."""
        data: dict[str, Any] = handler(self)
        if not data.get("distinct_from"):
            data.pop("distinct_from", None)
        return data

    @property
    def bars_direct_reports(self) -> bool:
        return "direct_reports" in self.distinct_from

    @field_validator("escalation")
    @classmethod
    def _escalation_after(cls, value: list[ApprovalTier]) -> list[ApprovalTier]:
        if any(tier.after is None for tier in value):
            raise ValueError("every escalation tier says 'after' how long it opens, e.g. after: 30m")
        return value

    def tiers(self) -> list[ApprovalTier]:
        return [ApprovalTier(mode=self.mode, groups=self.groups), *self.escalation]

    def tier_openings(self, created_at: datetime) -> list[datetime]:
        at = created_at
        openings = []
        for tier in self.tiers():
            if tier.after is not None:
                at = at + parse_duration(tier.after)
            openings.append(at)
        return openings

    def open_tiers(self, created_at: datetime, now: datetime) -> int:
        return sum(1 for opening in self.tier_openings(created_at) if opening <= now)

    def next_opening(self, created_at: datetime, open_tier: int) -> datetime | None:
        """When the tier after `open_tier` (the last one opened so far) opens; None after the last."""
        openings = self.tier_openings(created_at)
        return openings[open_tier + 1] if open_tier + 1 < len(openings) else None


@dataclass(frozen=True)
class ApprovalContext:
    """What approver kinds are measured against, for one request: the requester, the emails of the
    grantees (who the access is for; the requester when they ask for themselves), and for each
    requested resource its owners (emails and group names) and its integration's owners."""

    requester: Person
    grantees: frozenset[str] = frozenset()  # lower-cased emails
    resource_owners: tuple[frozenset[str], ...] = ()
    integration_owners: tuple[frozenset[str], ...] = ()


def _owns(person: Person, owners: frozenset[str]) -> bool:
    return person.email.lower() in owners or bool(person.groups & owners)


def approver_matches(approver: Approver, person: Person, ctx: ApprovalContext) -> bool:
    if not person.active:
        return False
    if approver.user:
        return approver.user.lower() == person.email.lower()
    if approver.group:
        return approver.group in person.groups
    if approver.shift:
        return approver.shift in person.shifts
    if approver.condition:
        return holds(approver.condition, person)
    if approver.manager:
        manager = ctx.requester.manager
        return manager is not None and manager.lower() == person.email.lower()
    owners = ctx.resource_owners if approver.resource_owner else ctx.integration_owners
    return bool(owners) and all(_owns(person, o) for o in owners)


def bar_of(policy: ApprovalPolicy, person: Person, ctx: ApprovalContext) -> Bar | None:
    """Why separation of duties keeps this person from deciding on the request; None when it does not.
    The requester is named first: a person asking for themselves is "the requester"."""
    email = person.email.lower()
    if not policy.self_approval:
        if email == ctx.requester.email.lower():
            return Bar.REQUESTER
        if email in ctx.grantees:
            return Bar.GRANTEE
    parties = {ctx.requester.email.lower(), *ctx.grantees}
    if policy.bars_direct_reports and person.manager and person.manager.lower() in parties:
        return Bar.DIRECT_REPORT
    return None


def describe_bar(bar: Bar, person: Person) -> str:
    if bar == Bar.REQUESTER:
        return f"{person.email} is the requester"
    if bar == Bar.GRANTEE:
        return f"{person.email} is the grantee"
    return f"{person.email} reports to {person.manager}"


def entitled(policy: ApprovalPolicy, person: Person, ctx: ApprovalContext, open_tiers: int) -> bool:
    """May this person act (approve or reject) on the request now? Never a service account."""
    if not person.active or person.service_account or bar_of(policy, person, ctx) is not None:
        return False
    return any(
        approver_matches(a, person, ctx)
        for tier in policy.tiers()[:open_tiers]
        for group in tier.groups
        for a in group.approvers
    )


def _group_met(group: ApproverGroup, approvals: Sequence[Person], ctx: ApprovalContext) -> bool:
    distinct = {
        p.email.lower() for p in approvals if any(approver_matches(a, p, ctx) for a in group.approvers)
    }
    return len(distinct) >= group.count


def satisfied(
    policy: ApprovalPolicy, approvals: Sequence[Person], ctx: ApprovalContext, open_tiers: int
) -> bool:
    """Do the approvals given so far (by these people, as they are now) approve the request?"""
    counted = [p for p in approvals if bar_of(policy, p, ctx) is None]
    for tier in policy.tiers()[:open_tiers]:
        met = [_group_met(g, counted, ctx) for g in tier.groups]
        if all(met) if tier.mode == Mode.ALL_OF else any(met):
            return True
    return False


def still_needed(
    policy: ApprovalPolicy, approvals: Sequence[Person], ctx: ApprovalContext, open_tiers: int
) -> str:
    """In words, what the first open tier still waits for."""
    tier = policy.tiers()[0]
    missing = [g.describe() for g in tier.groups if not _group_met(g, approvals, ctx)]
    joiner = " and " if tier.mode == Mode.ALL_OF else " or "
    return "waiting for " + joiner.join(missing) if missing else "approved"


def approvals_needed(policy: ApprovalPolicy | None) -> int:
    """The fewest approvals that can approve a request under the policy's first tier (0: none)."""
    if policy is None:
        return 0
    counts = [g.count for g in policy.groups]
    return sum(counts) if policy.mode == Mode.ALL_OF else min(counts)
