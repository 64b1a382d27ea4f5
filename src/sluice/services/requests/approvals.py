"""The one approver engine: who may decide on a request, revoke or extend what it granted, and who
explain names as its approvers, all as of now and all from the flow's approval policy (`approval:`, or
the older `approvers:` list read as one), and whether the approvals given so far are enough. Asking
the next tier of requests nobody acted on in time is `escalation.py`'s.

Separation of duties is applied here for every one of these questions alike: the requester and the
grantees never decide (unless the flow allows self-approval), nor, when the flow says so, their direct
reports (`domain.approval.bar_of`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from sluice.domain.approval import (
    ApprovalContext,
    ApprovalPolicy,
    ApprovalTier,
    Bar,
    bar_of,
    describe_bar,
    entitled,
    satisfied,
)
from sluice.domain.errors import NotAllowed
from sluice.domain.flows import FlowSpec
from sluice.services.requests.approval_contexts import approval_context, request_context, request_contexts
from sluice.services.requests.approver_people import ApproverDirectory, approvers_in, matching_people
from sluice.services.requests.policy import find_flow
from sluice.store.people_queries import people_snapshot
from sluice.store.queries import person_of
from sluice.store.tables import AccessRequest, Approval, Grant, Identity


@dataclass(frozen=True)
class RequestApproval:
    """A request's approval policy with what it is measured against now."""

    flow: str
    policy: ApprovalPolicy
    context: ApprovalContext
    open_tiers: int


def request_approval(
    session: Session, request: AccessRequest, flow: FlowSpec, now: datetime
) -> RequestApproval | None:
    policy = flow.approval_policy
    if policy is None:
        return None
    return RequestApproval(
        flow.name,
        policy,
        request_context(session, request, now),
        policy.open_tiers(request.created_at, now),
    )


def refusal(session: Session, state: RequestApproval, actor: Identity, now: datetime) -> str | None:
    """Why `actor` may not approve or reject the request now, in words; None when they may."""
    person = person_of(session, actor, now)
    bar = bar_of(state.policy, person, state.context)
    if bar == Bar.REQUESTER:
        return "you cannot approve your own request"
    if bar == Bar.GRANTEE:
        return "you cannot approve or reject access for yourself: this request is for you"
    if bar == Bar.DIRECT_REPORT:
        return (
            f"{describe_bar(bar, person)}, who asked for or would hold this access; flow {state.flow!r} "
            "wants approvals from outside their direct reports"
        )
    if not entitled(state.policy, person, state.context, state.open_tiers):
        return f"{actor.email} is not an approver of flow {state.flow!r} for this request"
    return None


def may_act(session: Session, state: RequestApproval, actor: Identity, now: datetime) -> bool:
    return entitled(state.policy, person_of(session, actor, now), state.context, state.open_tiers)


def approvals_enough(session: Session, state: RequestApproval, request: AccessRequest, now: datetime) -> bool:
    """Do the approvals recorded on the request approve it, counting each approver as they are now?"""
    ids = [a.approver_id for a in request.approvals if a.decision == "approve"]
    people = people_snapshot(session, now, ids)
    return satisfied(state.policy, [people[i] for i in ids if i in people], state.context, state.open_tiers)


def emails_of_tiers(
    session: Session, state: RequestApproval, tiers: Sequence[ApprovalTier], now: datetime
) -> list[str]:
    """Everyone who may act on the request now as an approver of one of `tiers` (separation of
    duties applied)."""
    matching = matching_people(session, state.context, approvers_in(tiers), now)
    return [p.email for p in matching if entitled(state.policy, p, state.context, state.open_tiers)]


def candidate_emails(
    session: Session, state: RequestApproval, now: datetime, directory: ApproverDirectory | None = None
) -> list[str]:
    """Everyone who may act on the request now (`directory` keeps what was read across requests)."""
    found = (directory or ApproverDirectory(session, now)).matching(
        state.context, approvers_in(state.policy.tiers()[: state.open_tiers])
    )
    return [p.email for p in found if entitled(state.policy, p, state.context, state.open_tiers)]


def undecided(request: AccessRequest, emails: list[str]) -> list[str]:
    decided = {a.approver.email.lower() for a in request.approvals}
    return [e for e in emails if e.lower() not in decided]


def already_decided(request: AccessRequest, approver: Identity) -> Approval | None:
    return next((a for a in request.approvals if a.approver_id == approver.id), None)


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
    return undecided(request, candidate_emails(session, state, now))


def request_approvals(
    session: Session, requests: Sequence[AccessRequest], now: datetime
) -> dict[str, RequestApproval]:
    """Request id -> its approval state, for those of `requests` whose flow (as it is now) asks for
    approval; each flow is read once and the contexts together."""
    flows: dict[str, FlowSpec | None] = {}
    for name in {r.flow_name for r in requests}:
        flows[name] = find_flow(session, name)
    policies = {n: f.approval_policy for n, f in flows.items() if f is not None and f.approval_policy}
    asking = [r for r in requests if r.flow_name in policies]
    contexts = request_contexts(session, asking, now)
    return {
        r.id: RequestApproval(
            r.flow_name,
            policies[r.flow_name],
            contexts[r.id],
            policies[r.flow_name].open_tiers(r.created_at, now),
        )
        for r in asking
    }


def acted_on_by(
    session: Session, requests: Sequence[AccessRequest], actor: Identity, now: datetime
) -> list[AccessRequest]:
    """Those of `requests` that `actor` may approve or reject now, in their order: the same rule as
    `can_act_on`, with the actor, the flows and the contexts read once for all of them."""
    person = person_of(session, actor, now)
    states = request_approvals(session, requests, now)
    return [
        r
        for r in requests
        if (state := states.get(r.id)) is not None
        and entitled(state.policy, person, state.context, state.open_tiers)
    ]


def approvers_of_requests(
    session: Session, requests: Sequence[AccessRequest], now: datetime
) -> dict[str, list[str]]:
    """Request id -> who may approve it now (those who already decided left out), for many requests
    with each group, schedule and person read once."""
    states = request_approvals(session, requests, now)
    directory = ApproverDirectory(session, now)
    return {
        r.id: undecided(r, candidate_emails(session, state, now, directory))
        for r in requests
        if (state := states.get(r.id)) is not None
    }


def approves_grant(session: Session, grant: Grant, actor: Identity, now: datetime) -> bool:
    """Is `actor` an approver of the request that made `grant`, under its flow as it is now? Such a
    person may revoke the grant, and extend it when extensions need approval. An automatic grant, or
    one whose flow is gone, has no approvers."""
    request = grant.request
    flow = find_flow(session, request.flow_name) if request is not None else None
    return request is not None and flow is not None and can_act_on(session, request, flow, actor, now)


def would_approve(
    session: Session, flows: Sequence[FlowSpec], *, requester: Identity, resource_id: str, now: datetime
) -> dict[str, list[str]]:
    """For each of `flows` that needs approval: who may approve a request `requester` made for
    themselves now on one resource (what explain names)."""
    needing = [(f.name, f.approval_policy) for f in flows if f.approval_policy is not None]
    if not needing:
        return {}
    ctx = approval_context(
        session, requester=requester, grantee_ids=[requester.id], resource_ids=[resource_id], now=now
    )
    return {name: candidate_emails(session, RequestApproval(name, p, ctx, 1), now) for name, p in needing}


def refuse_without_approver(
    session: Session,
    flow: FlowSpec,
    *,
    requester: Identity,
    grantee: Identity,
    resource_ids: Sequence[str],
    now: datetime,
) -> None:
    """A request nobody may ever approve (in any tier, as the directory is now) would only wait until
    it expires; it is refused when made, naming who its approvers are and why none of them may."""
    policy = flow.approval_policy
    if policy is None:
        return
    tiers = policy.tiers()
    ctx = approval_context(
        session, requester=requester, grantee_ids=[grantee.id], resource_ids=resource_ids, now=now
    )
    state = RequestApproval(flow.name, policy, ctx, len(tiers))
    if candidate_emails(session, state, now):
        return
    matching = matching_people(session, state.context, approvers_in(tiers), now)
    barred = [describe_bar(bar, p) for p in matching if (bar := bar_of(policy, p, state.context))]
    machines = [p.email for p in matching if p.service_account]
    asked = "; ".join(g.describe() for tier in tiers for g in tier.groups)
    reasons = []
    if barred:
        reasons.append(", ".join(barred) + ", and nobody approves access for themselves")
    if machines:
        reasons.append(", ".join(machines) + ": service accounts never approve")
    why = "; ".join(reasons) or f"no active identity is {asked} now"
    raise NotAllowed(
        f"nobody may approve this request under flow {flow.name!r}: {why}",
        reasons=f"approvers: {asked}",
    )
