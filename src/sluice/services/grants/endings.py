"""Transitions of grant rows that the services and the worker share. Each sets what *should* be; the
worker makes the target match."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from sluice.domain.states import Desired, awaits_start, is_ended, never_touched
from sluice.events.audit import Action, record
from sluice.store.tables import AccessRequest, Grant


def activate_request_grants(session: Session, request: AccessRequest, now: datetime) -> None:
    """An approved request's grants should now exist, until now + the requested duration. A request
    for a later start keeps them pending until then (the worker starts them); the duration counts from
    the start, not from the asking. Nothing is flushed here: the caller's next flush writes the rows
    (for a request just submitted, together with their INSERT)."""
    start = max(now, request.starts_at or now)
    for grant in request.grants:
        if not awaits_start(grant.desired):
            continue
        grant.starts_at = start
        grant.ends_at = start + timedelta(seconds=grant.duration_seconds)
        grant.updated_at = now
        if start > now:
            continue
        grant.desired = Desired.ACTIVE
        grant.next_attempt_at = None


def end_grants(
    session: Session,
    grants: Iterable[Grant],
    *,
    now: datetime,
    actor: str,
    action: Action,
    reason: str,
) -> list[Grant]:
    """Mark live grants as to be revoked. A grant that never touched the target simply ends."""
    ended = []
    for grant in grants:
        if is_ended(grant.desired):
            continue
        grant.desired = Desired.REVOKED
        grant.end_reason = reason
        # An expiry was due at the end time; an early revoke is due now.
        due = grant.ends_at if grant.ends_at is not None and grant.ends_at < now else now
        grant.revoke_requested_at = due
        grant.next_attempt_at = None
        grant.attempts = 0
        grant.updated_at = now
        if never_touched(grant.actual):
            grant.revoked_at = now
        record(
            session,
            now=now,
            actor=actor,
            action=action,
            subject_type="grant",
            subject_id=grant.id,
            reason=reason,
            request_id=grant.request_id,
            grantee=grant.identity.email,
            resource=grant.resource_path,
            permission=grant.permission,
        )
        ended.append(grant)
    return ended
