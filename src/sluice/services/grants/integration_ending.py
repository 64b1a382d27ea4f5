"""Ending every live grant of one integration: the emergency stop (`sluice grants revoke
--integration`) and the first step of retiring it (`sluice integrations retire`). Both only set what
should be; the worker takes the access away, and the retirement duty (`retirement.py`) finishes a
retirement once nothing of the integration is live."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from sluice.domain.errors import Conflict, InvalidInput, NotFound
from sluice.domain.lifecycle import Lifecycle
from sluice.domain.states import RequestStatus, is_ended
from sluice.events.audit import Action, record
from sluice.services.grants.endings import end_grants
from sluice.services.requests.decisions import close_pending
from sluice.store.grant_states import grant_is_open
from sluice.store.tables import AccessRequest, Grant, Integration

MAX_REASON_LENGTH = 2000


def _locked_integration(session: Session, name: str) -> Integration:
    integration = session.scalar(select(Integration).where(Integration.name == name).with_for_update())
    if integration is None:
        raise NotFound(f"no integration {name!r}; `sluice integrations` lists them")
    return integration


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput("give a reason: it is kept in the audit log with every grant it ends")
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"the reason may be at most {MAX_REASON_LENGTH} characters")
    return reason


def end_integration_grants(
    session: Session, integration: Integration, *, actor: str, reason: str, now: datetime
) -> list[Grant]:
    """Mark every open grant of the integration (pending or active) as to be revoked, locked in id
    order so an expiry or a revoke racing with this sees the row as it is committed. A request still
    waiting for approval is cancelled first, so nobody approves what can no longer be granted."""
    waiting = session.scalars(
        select(AccessRequest)
        .where(
            AccessRequest.status == RequestStatus.PENDING,
            AccessRequest.grants.any(Grant.integration_id == integration.id),
        )
        .order_by(AccessRequest.id)
        .with_for_update(of=AccessRequest)
    ).all()
    cancelled = []
    for request in waiting:
        cancelled += [
            g for g in request.grants if g.integration_id == integration.id and not is_ended(g.desired)
        ]
        close_pending(
            session,
            request,
            status=RequestStatus.CANCELLED,
            now=now,
            reason=f"integration {integration.name} stopped granting: {reason}",
            action=Action.REQUEST_CANCELLED,
            grants_reason=reason,
        )
    grants = session.scalars(
        select(Grant)
        .where(Grant.integration_id == integration.id, grant_is_open())
        .order_by(Grant.id)
        .options(selectinload(Grant.identity))
        .with_for_update(of=Grant)
        .execution_options(populate_existing=True)
    ).all()
    ended = end_grants(
        session, grants, now=now, actor=actor, action=Action.GRANT_REVOKE_REQUESTED, reason=reason
    )
    return cancelled + ended


def revoke_integration_grants(
    session: Session, *, name: str, actor: str, reason: str, now: datetime
) -> list[Grant]:
    """The emergency stop: every live grant of one integration ends now, audited as one act."""
    reason = _reason(reason)
    integration = _locked_integration(session, name)
    ended = end_integration_grants(session, integration, actor=actor, reason=reason, now=now)
    record(
        session,
        now=now,
        actor=actor,
        action=Action.INTEGRATION_GRANTS_REVOKED,
        subject_type="integration",
        subject_id=name,
        reason=reason,
        integration=name,
        counts={"grants": len(ended)},
    )
    return ended


def start_retirement(session: Session, *, name: str, actor: str, reason: str, now: datetime) -> Integration:
    """Close the integration to requests and end its grants; the worker finishes the retirement.
    Asking again while it retires is harmless (the grants are ended already); once retired, a 409."""
    reason = _reason(reason)
    integration = _locked_integration(session, name)
    if integration.lifecycle == Lifecycle.RETIRED:
        raise Conflict(f"integration {name!r} is retired already")
    ended = end_integration_grants(session, integration, actor=actor, reason=reason, now=now)
    if integration.lifecycle != Lifecycle.RETIRING:
        integration.lifecycle = Lifecycle.RETIRING
        integration.retire_error = None
        integration.updated_at = now
        record(
            session,
            now=now,
            actor=actor,
            action=Action.INTEGRATION_RETIRING,
            subject_type="integration",
            subject_id=name,
            reason=reason,
            integration=name,
            counts={"grants": len(ended)},
        )
    return integration
