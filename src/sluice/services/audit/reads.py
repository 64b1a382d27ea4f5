"""Reads of the audit log: pages of events for the API and the admin view, and one request's timeline."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.store.tables import AuditEvent, Grant


def audit_events(
    session: Session, *, limit: int, before_id: int | None, subject: str | None, action: str | None
) -> list[AuditEvent]:
    """Newest first; page on with `before_id` = the last id seen."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if subject:
        query = query.where(AuditEvent.subject_id == subject)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query))


def request_timeline(session: Session, *, request_id: str, limit: int = 500) -> list[AuditEvent]:
    """What happened to a request and its grants, oldest first (the audit events about either)."""
    grant_ids = select(Grant.id).where(Grant.request_id == request_id)
    query = (
        select(AuditEvent)
        .where((AuditEvent.subject_id == request_id) | AuditEvent.subject_id.in_(grant_ids))
        .order_by(AuditEvent.id)
        .limit(limit)
    )
    return list(session.scalars(query))
