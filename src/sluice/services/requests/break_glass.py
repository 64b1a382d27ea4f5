"""Break-glass: emergency access a requester approves themself, under a flow that allows it, with a
reason and an incident reference and for at most the flow's break-glass duration. Every approver hears
of it at once (the `request.break_glass` event); it stays awaiting review until one of the people the
approver engine names for the request reviews it, and a review may end its access at once.

This is the only place a request is decided by its own requester; approving, rejecting and reviewing
one's own request stay refused everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sluice.domain.durations import format_duration
from sluice.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from sluice.domain.flows import FlowSpec
from sluice.domain.people import Person, any_holds
from sluice.domain.states import RequestStatus
from sluice.domain.text import storable_text
from sluice.events.audit import Action, record
from sluice.services.directory.service_accounts import is_service_account
from sluice.services.grants.endings import activate_request_grants, end_grants
from sluice.services.requests.approvals import RequestApproval, refusal, request_context
from sluice.services.requests.policy import find_flow, load_flows
from sluice.store.queries import break_glass_unreviewed, person_of
from sluice.store.tables import AccessRequest, Identity

MAX_INCIDENT_LENGTH = 200
MAX_REVIEW_REASON_LENGTH = 2000  # as a request's reason
OUTCOMES = ("ok", "revoke")


@dataclass(frozen=True)
class BreakGlassAsk:
    """What a requester gives to break the glass: why, and the incident it is for."""

    reason: str
    incident: str


def _may_break(flow: FlowSpec, person: Person) -> bool:
    """Does the flow allow break-glass, and to this person (whoever may request, unless `allowed` says)?"""
    spec = flow.break_glass
    return spec is not None and (spec.allowed is None or any_holds(spec.allowed, person))


def break_glass_flows(flows: list[FlowSpec], person: Person, named: str | None) -> list[FlowSpec]:
    """The flows under which `person` may break the glass; refused when there is none."""
    usable = [f for f in flows if _may_break(f, person)]
    if usable:
        return usable
    if named is not None:
        raise NotAllowed(f"flow {named!r} does not allow break-glass access for {person.email}")
    raise NotAllowed(f"no access flow allows break-glass access for {person.email} now")


def _checked_text(value: str, what: str, hint: str, longest: int = MAX_REVIEW_REASON_LENGTH) -> None:
    """Given, bounded and storable (every way in reaches here, the portal's forms too)."""
    if not value.strip():
        raise InvalidInput(f"{what} is required: {hint}")
    if len(value) > longest:
        raise InvalidInput(f"{what} may be at most {longest} characters")
    try:
        storable_text(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} {exc}") from None


def offered(session: Session, identity: Identity, allowing: list[set[str]], now: datetime) -> FlowSpec | None:
    """The flow under which `identity` could break the glass for units each allowed by the flows
    named in `allowing` (what the portal offers as the emergency option), or None."""
    common = set.intersection(*allowing) if allowing else set()
    if not common:
        return None
    person = person_of(session, identity, now)
    flows = [f for f in load_flows(session) if f.name in common]
    usable = [f for f in flows if _may_break(f, person)]
    return min(usable, key=lambda f: f.name) if usable else None


def check_break_glass(
    session: Session,
    flow: FlowSpec,
    ask: BreakGlassAsk,
    requester: Identity,
    grantee: Identity,
    starts_at: datetime | None,
    duration: timedelta,
) -> None:
    """Refuse a break-glass the flow does not allow as asked (422), or a second one by someone whose
    earlier one is unreviewed where the flow allows one at a time (409, naming the earlier one)."""
    spec = flow.break_glass
    if spec is None:
        raise NotAllowed(f"flow {flow.name!r} does not allow break-glass access")
    _checked_text(ask.reason, "the break-glass reason", "say what the emergency is")
    _checked_text(ask.incident, "the incident reference", "e.g. INC-123", MAX_INCIDENT_LENGTH)
    if grantee.id != requester.id:
        raise InvalidInput("break-glass access is only for oneself")
    if starts_at is not None:
        raise InvalidInput("break-glass access starts at once; leave out the start time")
    if duration > spec.max_duration_delta:
        raise InvalidInput(
            f"duration {format_duration(duration)} is longer than flow {flow.name!r} allows for "
            f"break-glass access ({spec.max_duration}); ask for {spec.max_duration} or less"
        )
    if spec.one_at_a_time:
        # The requester's row is locked first, so two break-glass submissions by one person queue here
        # and the second sees the first.
        session.scalar(select(Identity.id).where(Identity.id == requester.id).with_for_update())
        earlier = session.scalar(
            select(AccessRequest.id)
            .where(break_glass_unreviewed(), AccessRequest.requester_id == requester.id)
            .order_by(AccessRequest.created_at)
            .limit(1)
        )
        if earlier is not None:
            raise Conflict(
                f"your break-glass request {earlier} is not reviewed yet; flow {flow.name!r} allows one "
                "unreviewed break-glass request at a time"
            )


def open_break_glass(session: Session, request: AccessRequest, ask: BreakGlassAsk, *, now: datetime) -> None:
    """The requester approves the new request themself: its access starts at once."""
    request.break_glass = True
    request.incident = ask.incident.strip()
    request.status = RequestStatus.APPROVED
    request.decided_at = now
    request.decided_by = request.requester.email
    request.decision_reason = ask.reason.strip()
    request.pending_until = None
    activate_request_grants(session, request, now)


def review_refusal(session: Session, request: AccessRequest, actor: Identity, now: datetime) -> str | None:
    """Why `actor` may not review the break-glass request, in words; None when they may: anyone the
    approver engine names for the request in any of its tiers (all are told at once), never its
    requester or grantee, never a service account."""
    if actor.id == request.requester_id:
        return "you cannot review your own break-glass request"
    if is_service_account(session, actor.id):
        return f"{actor.email} is a service account; service accounts never review"
    flow = find_flow(session, request.flow_name)
    if flow is None or flow.approval_policy is None:
        return f"flow {request.flow_name!r} names no approvers now; nobody can review this request"
    policy = flow.approval_policy
    state = RequestApproval(flow.name, policy, request_context(session, request, now), len(policy.tiers()))
    return refusal(session, state, actor, now)


def check_reviewable(session: Session, request: AccessRequest, reviewer: Identity, now: datetime) -> None:
    """Refuse a review of `request` by `reviewer` now: not break-glass or already reviewed (409), or
    not theirs to review (403). Asked again under the row lock by `review_break_glass`; asked alone
    before a review form is shown."""
    if not request.break_glass:
        raise Conflict(f"request {request.id} is not a break-glass request; there is nothing to review")
    why_not = review_refusal(session, request, reviewer, now)
    if why_not is not None:
        raise NotAllowed(why_not)
    if request.reviewed_at is not None:
        raise Conflict(f"request {request.id} was already reviewed by {request.reviewed_by}")


def review_break_glass(
    session: Session, *, request_id: str, reviewer: Identity, reason: str, outcome: str, now: datetime
) -> AccessRequest:
    """Record an approver's review; with outcome "revoke" the request's access ends at once."""
    request = session.scalar(select(AccessRequest).where(AccessRequest.id == request_id).with_for_update())
    if request is None:
        raise NotFound(f"no request {request_id!r}")
    if outcome not in OUTCOMES:
        raise InvalidInput(f"the outcome is one of: {', '.join(OUTCOMES)}")
    check_reviewable(session, request, reviewer, now)
    _checked_text(reason, "the review's reason", "say what the review found")
    # Compare and set: on SQLite the row lock above is a no-op, so two reviews at once are told
    # apart by which one still found the request unreviewed.
    marked = session.execute(
        update(AccessRequest)
        .where(AccessRequest.id == request.id, AccessRequest.reviewed_at.is_(None))
        .values(
            reviewed_at=now, reviewed_by=reviewer.email, review_reason=reason.strip(), review_outcome=outcome
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"request {request.id} was already reviewed by {request.reviewed_by}")
    record(
        session,
        now=now,
        actor=reviewer.email,
        action=Action.REQUEST_BREAK_GLASS_REVIEWED,
        subject_type="request",
        subject_id=request.id,
        reason=request.review_reason,
        requester=request.requester.email,
        flow=request.flow_name,
        break_glass=True,
        incident=request.incident,
        outcome=outcome,
    )
    if outcome == "revoke":
        end_grants(
            session,
            request.grants,
            now=now,
            actor=reviewer.email,
            action=Action.GRANT_REVOKE_REQUESTED,
            reason=f"break-glass review by {reviewer.email}: revoked",
        )
    session.flush()
    return request


def unreviewed_requests(session: Session, *, limit: int = 500) -> list[AccessRequest]:
    """Every break-glass request still awaiting review, oldest first."""
    query = select(AccessRequest).where(break_glass_unreviewed()).order_by(AccessRequest.created_at)
    return list(session.scalars(query.limit(limit)))


def to_review_by(session: Session, viewer: Identity, now: datetime) -> list[AccessRequest]:
    """The unreviewed break-glass requests `viewer` may review, oldest first."""
    return [r for r in unreviewed_requests(session) if review_refusal(session, r, viewer, now) is None]
