"""Escalation: a pending request whose next approval tier has opened asks the people of that tier
too, recorded as a `request.escalated` event naming them, so that webhooks can notify them. Who a tier
holds is the approver engine's answer (`approvals.py`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.approval import ApprovalPolicy, ApprovalTier
from sluice.domain.flows import FlowSpec
from sluice.domain.states import RequestStatus
from sluice.events.audit import Action, record
from sluice.services.requests.approval_contexts import request_context
from sluice.services.requests.approvals import RequestApproval, emails_of_tiers, undecided
from sluice.services.requests.policy import load_flows
from sluice.store.db import transaction
from sluice.store.tables import AccessRequest


def _escalating(flows: dict[str, FlowSpec]) -> list[str]:
    return sorted(name for name, f in flows.items() if f.approval is not None and f.approval.escalation)


def _newly_asked(
    session: Session, request: AccessRequest, policy: ApprovalPolicy, opened: int, now: datetime
) -> tuple[list[ApprovalTier], list[str]]:
    """The tiers opened since the request was last escalated, and the people they ask who were not
    asked before and have not decided yet."""
    tiers = policy.tiers()
    before, newly_open = tiers[: request.escalation_tier + 1], tiers[request.escalation_tier + 1 : opened]
    state = RequestApproval(request.flow_name, policy, request_context(session, request, now), opened)
    already = set(emails_of_tiers(session, state, before, now))
    asked = [e for e in emails_of_tiers(session, state, newly_open, now) if e not in already]
    return newly_open, undecided(request, asked)


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


def next_escalation(session: Session, *, flows: dict[str, FlowSpec]) -> datetime | None:
    """When the next approval tier of a pending request opens (in the past when one opened that was not
    asked yet)."""
    names = _escalating(flows)
    if not names:
        return None
    moments = []
    for request in session.scalars(
        select(AccessRequest).where(
            AccessRequest.status == RequestStatus.PENDING, AccessRequest.flow_name.in_(names)
        )
    ):
        flow = flows.get(request.flow_name)
        policy = flow.approval_policy if flow else None
        if policy is not None and (at := policy.next_opening(request.created_at, request.escalation_tier)):
            moments.append(at)
    return min(moments) if moments else None


class Escalation:
    """The worker's duty: ask the next approval tier of requests nobody acted on in time."""

    def __init__(self, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def run(self) -> list[str]:
        with transaction(self.factory) as session:
            flows = {f.name: f for f in load_flows(session)}
            return escalate_due_requests(session, now=self.clock(), flows=flows)

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        return next_escalation(session, flows={f.name: f for f in load_flows(session)})
