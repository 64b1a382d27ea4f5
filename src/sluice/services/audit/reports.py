"""The access report, for access reviews and auditors: who had which access, when, asked by whom and
why, approved by whom, and how it ended. One row per access unit that existed in a target (a grant
that never became access — rejected, cancelled, expired — is not access and is not listed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from sluice.domain.states import grant_state
from sluice.store.tables import AccessRequest, Approval, Grant, Identity, Integration

APPROVE = "approve"


@dataclass(frozen=True)
class AccessFilter:
    person: str | None = None  # an email
    resource: str | None = None  # a resource path, or a prefix of one (a database, a schema)
    integration: str | None = None
    flow: str | None = None
    since: datetime | None = None  # access that was live at some time in [since, until]
    until: datetime | None = None


@dataclass(frozen=True)
class AccessRow:
    grant_id: str
    person: str
    integration: str
    resource: str
    permission: str
    flow: str | None
    request_id: str | None
    requested_by: str | None
    requested_at: datetime | None
    reason: str | None
    approved_by: list[str]
    granted_at: datetime | None
    planned_end: datetime | None
    ended_at: datetime | None
    state: str
    end_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = tuple(AccessRow.__dataclass_fields__)


def _filtered(query: Any, spec: AccessFilter) -> Any:
    if spec.person:
        query = query.where(Identity.email == spec.person.lower())
    if spec.integration:
        query = query.where(Integration.name == spec.integration)
    if spec.resource:
        prefix = spec.resource.rstrip("/")
        query = query.where(or_(Grant.resource_path == prefix, Grant.resource_path.startswith(prefix + "/")))
    if spec.flow:
        query = query.outerjoin(AccessRequest, Grant.request_id == AccessRequest.id).where(
            or_(Grant.flow_name == spec.flow, AccessRequest.flow_name == spec.flow)
        )
    if spec.since:
        query = query.where(or_(Grant.revoked_at.is_(None), Grant.revoked_at >= spec.since))
    if spec.until:
        query = query.where(Grant.granted_at <= spec.until)
    return query


def access_report(
    session: Session, spec: AccessFilter, *, limit: int, offset: int = 0
) -> tuple[list[AccessRow], int]:
    """A page of the report, oldest access first, and how many rows the whole report has."""
    base = (
        select(Grant)
        .join(Identity, Grant.identity_id == Identity.id)
        .join(Integration, Grant.integration_id == Integration.id)
        .where(Grant.granted_at.is_not(None))
    )
    base = _filtered(base, spec)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    grants = session.scalars(
        base.order_by(Grant.granted_at, Grant.id)
        .limit(limit)
        .offset(offset)
        .options(
            selectinload(Grant.identity),
            selectinload(Grant.integration),
            selectinload(Grant.request).selectinload(AccessRequest.requester),
            selectinload(Grant.request).selectinload(AccessRequest.approvals).selectinload(Approval.approver),
        )
    ).all()
    return [_row(grant) for grant in grants], total


def _row(grant: Grant) -> AccessRow:
    request = grant.request
    approvers = [a.approver.email for a in request.approvals if a.decision == APPROVE] if request else []
    return AccessRow(
        grant_id=grant.id,
        person=grant.identity.email,
        integration=grant.integration.name,
        resource=grant.resource_path,
        permission=grant.permission,
        flow=request.flow_name if request else grant.flow_name,
        request_id=request.id if request else None,
        requested_by=request.requester.email if request else None,
        requested_at=request.created_at if request else None,
        reason=request.reason if request else None,
        approved_by=approvers or ([request.decided_by] if request and request.decided_by else []),
        granted_at=grant.granted_at,
        planned_end=grant.ends_at,
        ended_at=grant.revoked_at,
        state=grant_state(
            grant.desired, grant.actual, revoke_failed=grant.revoke_failed_at is not None
        ).value,
        end_reason=grant.end_reason,
    )
