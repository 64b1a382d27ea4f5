"""Acting on a request as a person: first the rule for seeing it (someone who may not see a request
gets the answer for an absent one, not a refusal that names it), then the decision, each with the
rights the caller's role gives. The API's routes and the portal's pages both call these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from sluice.domain.roles import Role
from sluice.services.grants import revocation
from sluice.services.requests import break_glass, decisions, reads
from sluice.store.tables import AccessRequest, Identity


class RequestAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    REVOKE = "revoke"


def act_on_request(
    session: Session,
    *,
    request_id: str,
    action: RequestAction,
    actor: Identity,
    role: Role,
    reason: str,
    now: datetime,
) -> AccessRequest:
    reads.visible_request(
        session, request_id=request_id, viewer=actor, is_admin=role.reads_everything, now=now
    )
    if action == RequestAction.APPROVE:
        return decisions.approve_request(
            session, request_id=request_id, approver=actor, reason=reason, now=now
        )
    if action == RequestAction.REJECT:
        return decisions.reject_request(
            session, request_id=request_id, approver=actor, reason=reason, now=now
        )
    if action == RequestAction.CANCEL:
        return decisions.cancel_request(
            session, request_id=request_id, actor=actor, is_admin=role.administers, reason=reason, now=now
        )
    return revocation.revoke_request(
        session, request_id=request_id, actor=actor, is_admin=role.operates, reason=reason, now=now
    )


def review_request(
    session: Session,
    *,
    request_id: str,
    actor: Identity,
    role: Role,
    reason: str,
    outcome: str,
    now: datetime,
) -> AccessRequest:
    """Review a break-glass request as a person (seeing it first, as for any decision)."""
    reads.visible_request(
        session, request_id=request_id, viewer=actor, is_admin=role.reads_everything, now=now
    )
    return break_glass.review_break_glass(
        session, request_id=request_id, reviewer=actor, reason=reason, outcome=outcome, now=now
    )


def reviewable_request(
    session: Session, *, request_id: str, actor: Identity, role: Role, now: datetime
) -> AccessRequest:
    """The break-glass request `actor` may review now, with the error a review would meet otherwise:
    what a way in asks before it offers the review form."""
    request = reads.visible_request(
        session, request_id=request_id, viewer=actor, is_admin=role.reads_everything, now=now
    )
    break_glass.check_reviewable(session, request, actor, now)
    return request
