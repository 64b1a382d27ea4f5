"""Approval policies applied to one request, as of now: who may act on it, whether the approvals
given so far are enough, and the escalation of requests nobody acted on in time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sluice.domain.approval import (
    ApprovalContext,
    ApprovalPolicy,
    ApprovalTier,
    Approver,
    approver_matches,
    entitled,
    satisfied,
)
from sluice.domain.flows import FlowSpec
from sluice.domain.states import RequestStatus
from sluice.events.audit import Action, record
from sluice.store.people_queries import (
    integration_owners_of,
    on_call,
    owners_of_resources,
    people_snapshot,
)
from sluice.store.queries import person_of
from sluice.store.tables import AccessRequest, Approval, Group, GroupMember, Identity


@dataclass(frozen=True)
class RequestApproval:
    """A request's approval policy with what it is measured against now."""

    policy: ApprovalPolicy
    context: ApprovalContext
    open_tiers: int


def approval_context(session: Session, request: AccessRequest, now: datetime) -> ApprovalContext:
    resource_ids = [g.resource_id for g in request.grants if g.resource_id]
    owners = owners_of_resources(session, resource_ids)
    integration_owners = integration_owners_of(session, resource_ids)
    return ApprovalContext(
        requester=person_of(session, request.requester, now),
        resource_owners=tuple(owners[r] for r in resource_ids),
        integration_owners=tuple(integration_owners.get(r, frozenset()) for r in resource_ids),
    )


def request_approval(
    session: Session, request: AccessRequest, flow: FlowSpec, now: datetime
) -> RequestApproval | None:
    policy = flow.approval_policy
    if policy is None:
        return None
    return RequestApproval(
        policy, approval_context(session, request, now), policy.open_tiers(request.created_at, now)
    )


def may_act(session: Session, state: RequestApproval, actor: Identity, now: datetime) -> bool:
    return entitled(state.policy, person_of(session, actor, now), state.context, state.open_tiers)


def approvals_enough(session: Session, state: RequestApproval, request: AccessRequest, now: datetime) -> bool:
    """Do the approvals recorded on the request approve it, counting each approver as they are now?"""
    ids = [a.approver_id for a in request.approvals if a.decision == "approve"]
    people = people_snapshot(session, now, ids)
    return satisfied(state.policy, [people[i] for i in ids if i in people], state.context, state.open_tiers)


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


def _emails_of_tiers(
    session: Session, state: RequestApproval, tiers: Sequence[ApprovalTier], now: datetime
) -> list[str]:
    """Everyone who may act on the request now as an approver of one of `tiers` (the requester left
    out unless the flow allows self-approval)."""
    ctx = state.context
    approvers = [a for tier in tiers for group in tier.groups for a in group.approvers]
    named = [_named_emails(session, a, ctx, now) for a in approvers]
    everyone = any(n is None for n in named)
    lowered = {e.lower() for emails in named if emails for e in emails}
    ids = None
    if not everyone:
        ids = list(
            session.scalars(select(Identity.id).where(func.lower(Identity.email).in_(sorted(lowered))))
        )
    people = people_snapshot(session, now, ids)
    return sorted(
        p.email
        for p in people.values()
        if (everyone or p.email.lower() in lowered)
        and entitled(state.policy, p, ctx, state.open_tiers)
        and any(approver_matches(a, p, ctx) for a in approvers)
    )


def candidate_emails(session: Session, state: RequestApproval, now: datetime) -> list[str]:
    """Everyone who may act on the request now (the requester excluded unless the flow allows)."""
    return _emails_of_tiers(session, state, state.policy.tiers()[: state.open_tiers], now)


def _undecided(request: AccessRequest, emails: list[str]) -> list[str]:
    decided = {a.approver.email.lower() for a in request.approvals}
    return [e for e in emails if e.lower() not in decided]


def describe_waiting(state: RequestApproval) -> str:
    tiers = state.policy.tiers()[: state.open_tiers]
    return "; ".join(
        (" and " if t.mode == "all_of" else " or ").join(g.describe() for g in t.groups) for t in tiers
    )


def _escalating(flows: dict[str, FlowSpec]) -> list[str]:
    return sorted(name for name, f in flows.items() if f.approval is not None and f.approval.escalation)


def _newly_asked(
    session: Session, request: AccessRequest, policy: ApprovalPolicy, opened: int, now: datetime
) -> tuple[list[ApprovalTier], list[str]]:
    """The tiers opened since the request was last escalated, and the people they ask who were not
    asked before and have not decided yet."""
    tiers = policy.tiers()
    before, newly_open = tiers[: request.escalation_tier + 1], tiers[request.escalation_tier + 1 : opened]
    state = RequestApproval(policy, approval_context(session, request, now), opened)
    already = set(_emails_of_tiers(session, state, before, now))
    asked = [e for e in _emails_of_tiers(session, state, newly_open, now) if e not in already]
    return newly_open, _undecided(request, asked)


def escalate_due_requests(session: Session, *, now: datetime, flows: dict[str, FlowSpec]) -> list[str]:
    """Pending requests whose next approval tier has opened: record who is now asked too, as people
    (`approvers`: their emails, resolved now; not those asked before nor those who decided already),
    so that a webhook receiver can notify them."""
    escalated = []
    pending = session.scalars(
        select(AccessRequest)
        .where(AccessRequest.status == RequestStatus.PENDING, AccessRequest.flow_name.in_(_escalating(flows)))
        .with_for_update(skip_locked=True)
    ).all()
    for request in pending:
        flow = flows.get(request.flow_name)
        policy = flow.approval_policy if flow else None
        if policy is None:
            continue
        opened = policy.open_tiers(request.created_at, now)
        if opened - 1 <= request.escalation_tier:
            continue
        newly_open, asked = _newly_asked(session, request, policy, opened, now)
        request.escalation_tier = opened - 1
        record(
            session,
            now=now,
            actor="sluice",
            action=Action.REQUEST_ESCALATED,
            subject_type="request",
            subject_id=request.id,
            reason="nobody acted in time; now also asked: "
            + " / ".join(g.describe() for tier in newly_open for g in tier.groups),
            flow=request.flow_name,
            requester=request.requester.email,
            approvers=asked,
        )
        escalated.append(request.id)
    return escalated


def next_escalation(session: Session, *, now: datetime, flows: dict[str, FlowSpec]) -> datetime | None:
    moments = []
    for request in session.scalars(
        select(AccessRequest).where(
            AccessRequest.status == RequestStatus.PENDING, AccessRequest.flow_name.in_(_escalating(flows))
        )
    ):
        flow = flows.get(request.flow_name)
        policy = flow.approval_policy if flow else None
        if policy is not None and (at := policy.next_opening(request.created_at, now)) is not None:
            moments.append(at)
    return min(moments) if moments else None


def already_decided(request: AccessRequest, approver: Identity) -> Approval | None:
    return next((a for a in request.approvals if a.approver_id == approver.id), None)


__all__ = [
    "RequestApproval",
    "approval_context",
    "approvals_enough",
    "approver_matches",
    "candidate_emails",
    "escalate_due_requests",
    "may_act",
    "request_approval",
]


def can_act_on(
    session: Session, request: AccessRequest, flow: FlowSpec, actor: Identity, now: datetime
) -> bool:
    """May `actor` approve or reject `request` under `flow` now?"""
    state = request_approval(session, request, flow, now)
    return state is not None and may_act(session, state, actor, now)


def approvers_of_request(
    session: Session, request: AccessRequest, flow: FlowSpec, now: datetime
) -> list[str]:
    """Who may approve the request now (those who already decided left out)."""
    state = request_approval(session, request, flow, now)
    if state is None:
        return []
    return _undecided(request, candidate_emails(session, state, now))
