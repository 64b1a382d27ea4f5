"""Deciding on a request: approve, reject, cancel. These race with each other and with the worker, so
each locks the row, re-checks its state, and moves it with a guarded update; the loser gets a 409."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from sluice.domain.states import RequestStatus, held_in_target
from sluice.events.audit import Action, record
from sluice.services.directory.service_accounts import is_service_account
from sluice.services.grants.endings import activate_request_grants, end_grants
from sluice.services.requests.approvals import (
    RequestApproval,
    already_decided,
    approvals_enough,
    refusal,
    request_approval,
)
from sluice.services.requests.policy import load_flow
from sluice.store.tables import AccessRequest, Approval, Identity
from sluice.store.types import new_id


def lock_request(session: Session, request_id: str) -> AccessRequest:
    request = session.scalar(select(AccessRequest).where(AccessRequest.id == request_id).with_for_update())
    if request is None:
        raise NotFound(f"no request {request_id!r}")
    return request


def _compare_and_set(
    session: Session, request: AccessRequest, expected: str, new: str, now: datetime, actor: str, reason: str
) -> bool:
    """Move the status from `expected` to `new`, or do nothing when it is no longer `expected`; so two
    racing decisions cannot both win (also on SQLite). The row is re-read either way."""
    result = session.execute(
        update(AccessRequest)
        .where(AccessRequest.id == request.id, AccessRequest.status == expected)
        .values(status=new, decided_at=now, decided_by=actor, decision_reason=reason, pending_until=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _move(
    session: Session, request: AccessRequest, expected: str, new: str, now: datetime, actor: str, reason: str
) -> None:
    if not _compare_and_set(session, request, expected, new, now, actor, reason):
        raise Conflict(f"request {request.id} is already {request.status}")


def _ensure_pending(request: AccessRequest) -> None:
    if request.status != RequestStatus.PENDING:
        raise Conflict(f"request {request.id} is already {request.status}")


def _entitled_state(
    session: Session, request: AccessRequest, actor: Identity, now: datetime
) -> RequestApproval:
    """The request's approval state, once `actor` is shown to be entitled to act on it now (the
    approver engine says who is, and why not). A service account never approves, whatever a flow says."""
    if is_service_account(session, actor.id):
        raise NotAllowed(f"{actor.email} is a service account; service accounts never approve or reject")
    flow = load_flow(session, request.flow_name)
    state = request_approval(session, request, flow, now)
    if state is None:  # the flow no longer asks for approval: nobody holds approver rights on it
        own = actor.id == request.requester_id
        raise NotAllowed(
            "you cannot approve your own request"
            if own
            else f"{actor.email} is not an approver of flow {flow.name!r} for this request"
        )
    why_not = refusal(session, state, actor, now)
    if why_not is not None:
        raise NotAllowed(why_not)
    if already_decided(request, actor) is not None:
        raise Conflict(f"{actor.email} has already decided on request {request.id}")
    return state


def _add_decision(
    session: Session, request: AccessRequest, approver: Identity, decision: str, reason: str, now: datetime
) -> None:
    session.add(
        Approval(
            id=new_id("apr"),
            request_id=request.id,
            approver_id=approver.id,
            decision=decision,
            reason=reason,
            created_at=now,
        )
    )


def approve_request(
    session: Session, *, request_id: str, approver: Identity, reason: str, now: datetime
) -> AccessRequest:
    """Record an approval; the request is approved once its flow's approval policy is satisfied."""
    request = lock_request(session, request_id)
    _ensure_pending(request)
    state = _entitled_state(session, request, approver, now)
    if state.policy.reason_required and not reason.strip():
        raise InvalidInput(f"flow {request.flow_name!r} needs a reason from the approver")
    _add_decision(session, request, approver, "approve", reason, now)
    session.flush()
    session.refresh(request)
    enough = approvals_enough(session, state, request, now)
    if enough:
        _move(session, request, RequestStatus.PENDING, RequestStatus.APPROVED, now, approver.email, reason)
    record(
        session,
        now=now,
        actor=approver.email,
        action=Action.REQUEST_APPROVED if enough else Action.REQUEST_APPROVAL_RECORDED,
        subject_type="request",
        subject_id=request.id,
        reason=reason,
        flow=request.flow_name,
        requester=request.requester.email,
    )
    if enough:
        activate_request_grants(session, request, now)
    return request


def reject_request(
    session: Session, *, request_id: str, approver: Identity, reason: str, now: datetime
) -> AccessRequest:
    """A rejection by anyone entitled to approve rejects the request."""
    request = lock_request(session, request_id)
    _ensure_pending(request)
    if approver.id == request.requester_id:
        raise NotAllowed("you cannot decide on your own request; cancel it instead")
    _entitled_state(session, request, approver, now)
    if not reason.strip():
        raise InvalidInput("say why the request is rejected")
    _move(session, request, RequestStatus.PENDING, RequestStatus.REJECTED, now, approver.email, reason)
    _add_decision(session, request, approver, "reject", reason, now)
    record(
        session,
        now=now,
        actor=approver.email,
        action=Action.REQUEST_REJECTED,
        subject_type="request",
        subject_id=request.id,
        reason=reason,
        requester=request.requester.email,
    )
    end_grants(
        session,
        request.grants,
        now=now,
        actor=approver.email,
        action=Action.GRANT_REVOKE_REQUESTED,
        reason="request rejected",
    )
    return request


def cancel_request(
    session: Session, *, request_id: str, actor: Identity, is_admin: bool, reason: str, now: datetime
) -> AccessRequest:
    """The requester withdraws a request before its access is active. Cancelling never leaves access
    behind: anything already being granted is revoked."""
    request = lock_request(session, request_id)
    if actor.id != request.requester_id and not is_admin:
        raise NotAllowed("only the requester (or an admin) can cancel a request")
    if request.status == RequestStatus.APPROVED:
        if any(held_in_target(g.actual) for g in request.grants):
            raise Conflict(f"request {request.id} is already active; revoke it instead")
        expected = RequestStatus.APPROVED
    else:
        _ensure_pending(request)
        expected = RequestStatus.PENDING
    _move(session, request, expected, RequestStatus.CANCELLED, now, actor.email, reason)
    record(
        session,
        now=now,
        actor=actor.email,
        action=Action.REQUEST_CANCELLED,
        subject_type="request",
        subject_id=request.id,
        reason=reason or None,
    )
    end_grants(
        session,
        request.grants,
        now=now,
        actor=actor.email,
        action=Action.GRANT_REVOKE_REQUESTED,
        reason="request cancelled",
    )
    return request


def close_pending(
    session: Session,
    request: AccessRequest,
    *,
    status: str,
    now: datetime,
    reason: str,
    action: Action,
    grants_reason: str,
    event_reason: str | None = None,
    **details: Any,
) -> bool:
    """Sluice itself ends a pending request (it expired, or can no longer be granted): the status is
    compare-and-set, so a request decided meanwhile is left alone (False); else the event is written
    and its grants are ended."""
    if not _compare_and_set(session, request, RequestStatus.PENDING, status, now, "sluice", reason):
        return False
    record(
        session,
        now=now,
        actor="sluice",
        action=action,
        subject_type="request",
        subject_id=request.id,
        reason=event_reason or reason,
        **details,
    )
    end_grants(
        session,
        request.grants,
        now=now,
        actor="sluice",
        action=Action.GRANT_REVOKE_REQUESTED,
        reason=grants_reason,
    )
    return True
