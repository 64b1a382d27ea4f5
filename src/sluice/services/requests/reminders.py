"""Reminders: a request still pending `notify.remind_after` after it was made (and, with
`notify.remind_every`, again after each such span) is recorded as a `request.reminder` event naming the
approvers who can still decide now (the approver engine's answer); the notification core tells them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.flows import FlowSpec
from sluice.domain.states import RequestStatus
from sluice.events.audit import Action, record
from sluice.services.requests.approvals import approvers_of_request
from sluice.services.requests.policy import load_flows
from sluice.store.db import transaction
from sluice.store.tables import AccessRequest


def _reminding(flows: dict[str, FlowSpec]) -> list[str]:
    return sorted(name for name, f in flows.items() if f.notify is not None and f.notify.remind_after)


def reminder_due(request: AccessRequest, flow: FlowSpec) -> datetime | None:
    """When the request's approvers are next reminded (None: never again)."""
    spec = flow.notify
    after = spec.remind_after_delta if spec is not None else None
    if spec is None or after is None:
        return None
    if request.reminded_at is None:
        return request.created_at + after
    every = spec.remind_every_delta
    return request.reminded_at + every if every is not None else None


def remind_due_requests(session: Session, *, now: datetime, flows: dict[str, FlowSpec]) -> list[str]:
    """Record a reminder for every pending request that is due one; returns their ids."""
    reminded = []
    pending = session.scalars(
        select(AccessRequest)
        .where(AccessRequest.status == RequestStatus.PENDING, AccessRequest.flow_name.in_(_reminding(flows)))
        .order_by(AccessRequest.created_at, AccessRequest.id)
        .with_for_update(skip_locked=True)
    ).all()
    for request in pending:
        flow = flows[request.flow_name]
        due = reminder_due(request, flow)
        if due is None or due > now:
            continue
        approvers = approvers_of_request(session, request, flow, now)
        request.reminded_at = now
        record(
            session,
            now=now,
            actor="sluice",
            action=Action.REQUEST_REMINDER,
            subject_type="request",
            subject_id=request.id,
            reason=f"waiting for a decision since {request.created_at:%Y-%m-%d %H:%M} UTC",
            flow=request.flow_name,
            requester=request.requester.email,
            approvers=approvers,
        )
        reminded.append(request.id)
    return reminded


def next_reminder(session: Session, *, now: datetime, flows: dict[str, FlowSpec]) -> datetime | None:
    names = _reminding(flows)
    if not names:
        return None
    moments = [
        due
        for request in session.scalars(
            select(AccessRequest).where(
                AccessRequest.status == RequestStatus.PENDING, AccessRequest.flow_name.in_(names)
            )
        )
        if (due := reminder_due(request, flows[request.flow_name])) is not None
    ]
    return min(moments) if moments else None


class Reminders:
    """The worker's duty: remind the approvers of requests left waiting."""

    def __init__(self, factory: sessionmaker[Session], *, clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def run(self) -> list[str]:
        with transaction(self.factory) as session:
            flows = {f.name: f for f in load_flows(session)}
            return remind_due_requests(session, now=self.clock(), flows=flows)

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        return next_reminder(session, now=now, flows={f.name: f for f in load_flows(session)})
