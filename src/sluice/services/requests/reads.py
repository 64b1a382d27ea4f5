"""Read-only questions the API and the portal ask: lists with filters and pages, and who may see what.
Nothing here writes; each function takes the caller's session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from sluice.domain.errors import NotAllowed, NotFound
from sluice.domain.flows import FlowSpec
from sluice.domain.states import GrantState, RequestStatus
from sluice.services.pages import Page, page_of
from sluice.services.requests import break_glass
from sluice.services.requests.approvals import (
    acted_on_by,
    approvers_of_request,
    approvers_of_requests,
    can_act_on,
)
from sluice.services.requests.policy import find_flow
from sluice.store.grant_states import grant_in_state, grant_is_live
from sluice.store.tables import (
    AccessFlow,
    AccessRequest,
    Approval,
    Grant,
    Identity,
    Integration,
)


class RequestScope(StrEnum):
    MINE = "mine"
    TO_APPROVE = "to_approve"
    TO_REVIEW = "to_review"  # break-glass requests the viewer may review
    ALL = "all"


def may_decide(session: Session, request: AccessRequest, viewer: Identity, now: datetime) -> bool:
    """True when `viewer` holds approver rights on the request's flow (whatever its status)."""
    flow = find_flow(session, request.flow_name)
    return flow is not None and can_act_on(session, request, flow, viewer, now)


def request_approvers(session: Session, request: AccessRequest, now: datetime) -> list[str]:
    """Who may approve the request now: nobody once it is decided."""
    if request.status != RequestStatus.PENDING:
        return []
    flow = find_flow(session, request.flow_name)
    if flow is None:
        return []
    return approvers_of_request(session, request, flow, now)


def requests_approvers(
    session: Session, requests: list[AccessRequest], now: datetime
) -> dict[str, list[str]]:
    """Request id -> `request_approvers`, for a page of requests at once."""
    return approvers_of_requests(session, [r for r in requests if r.status == RequestStatus.PENDING], now)


def visible_request(
    session: Session, *, request_id: str, viewer: Identity, is_admin: bool, now: datetime
) -> AccessRequest:
    """The request, if the viewer is its requester, the person it is for, an approver of it or an
    admin; otherwise NotFound (the same answer as for an absent one, so ids cannot be probed)."""
    request = session.get(AccessRequest, request_id)
    missing = NotFound(f"no request {request_id!r}")
    if request is None:
        raise missing
    if is_admin or request.requester_id == viewer.id:
        return request
    grantee = session.scalar(
        select(Grant.id).where(Grant.request_id == request.id, Grant.identity_id == viewer.id).limit(1)
    )
    if grantee is not None:
        return request
    decided = session.scalar(
        select(Approval.id).where(Approval.request_id == request.id, Approval.approver_id == viewer.id)
    )
    if decided is not None or may_decide(session, request, viewer, now):
        return request
    if request.break_glass and break_glass.review_refusal(session, request, viewer, now) is None:
        return request
    raise missing


def visible_grant(
    session: Session, *, grant_id: str, viewer: Identity, is_admin: bool, now: datetime
) -> Grant:
    """The grant, if the viewer holds it, may see its request (`visible_request`) or is an admin;
    otherwise NotFound, the same answer as for an absent one. Acting on a grant checks this first, so
    a refusal never tells a stranger that the id exists or which flow it belongs to."""
    grant = session.get(Grant, grant_id)
    missing = NotFound(f"no grant {grant_id!r}")
    if grant is None:
        raise missing
    if is_admin or grant.identity_id == viewer.id:
        return grant
    if grant.request_id is None:
        raise missing
    try:
        visible_request(session, request_id=grant.request_id, viewer=viewer, is_admin=False, now=now)
    except NotFound:
        raise missing from None
    return grant


def list_requests(
    session: Session,
    *,
    viewer: Identity,
    is_admin: bool,
    scope: RequestScope,
    status: RequestStatus | None,
    limit: int,
    offset: int,
    now: datetime,
) -> Page[AccessRequest]:
    query = (
        select(AccessRequest)
        .options(
            selectinload(AccessRequest.requester),
            selectinload(AccessRequest.grants),
            selectinload(AccessRequest.approvals).selectinload(Approval.approver),
        )
        .order_by(AccessRequest.created_at.desc(), AccessRequest.id.desc())
    )
    if status is not None:
        query = query.where(AccessRequest.status == status)
    if scope == RequestScope.MINE:
        return page_of(session, query.where(AccessRequest.requester_id == viewer.id), limit, offset)
    if scope == RequestScope.ALL:
        if not is_admin:
            raise NotAllowed("listing every request needs an admin token; use scope=mine or to_approve")
        return page_of(session, query, limit, offset)
    if scope == RequestScope.TO_REVIEW:
        review = [r for r in break_glass.to_review_by(session, viewer, now) if status in (None, r.status)]
        return Page(review[offset : offset + limit], len(review))
    # to_approve: approver rights come from each flow and the request's parties; the approver engine
    # reads the flows and the requests' contexts once for all pending requests, then decides each.
    if status not in (None, RequestStatus.PENDING):
        return Page([], 0)
    pending = session.scalars(
        select(AccessRequest)
        .where(AccessRequest.status == RequestStatus.PENDING, AccessRequest.requester_id != viewer.id)
        .order_by(AccessRequest.created_at.desc(), AccessRequest.id.desc())
    ).all()
    mine = acted_on_by(session, pending, viewer, now)
    shown = [r.id for r in mine[offset : offset + limit]]
    loaded = {r.id: r for r in session.scalars(query.where(AccessRequest.id.in_(shown)))} if shown else {}
    return Page([loaded[i] for i in shown], len(mine))


# Access -----------------------------------------------------------------------------------------


def grants_of(
    session: Session, *, identity: Identity, include_ended: bool, limit: int, offset: int
) -> Page[Grant]:
    query = (
        select(Grant)
        .where(Grant.identity_id == identity.id)
        .order_by(Grant.created_at.desc(), Grant.id.desc())
    )
    if not include_ended:
        query = query.where(grant_is_live())
    return page_of(session, query, limit, offset)


def own_grant(session: Session, *, grant_id: str, viewer: Identity) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None or grant.identity_id != viewer.id:
        raise NotFound(f"you hold no grant {grant_id!r}")
    return grant


@dataclass(frozen=True)
class GrantFilter:
    """Which grants an operator lists. With no `state`, live grants only unless `include_ended`."""

    state: GrantState | None = None
    integration: str | None = None
    identity: str | None = None  # an email, any case
    resource_prefix: str | None = None
    include_ended: bool = False


def list_grants(session: Session, *, where: GrantFilter, limit: int, offset: int) -> Page[Grant]:
    """Every identity's grants (for operators), newest first."""
    query = (
        select(Grant)
        .options(selectinload(Grant.identity), selectinload(Grant.integration))
        .order_by(Grant.created_at.desc(), Grant.id.desc())
    )
    if where.state is not None:
        query = query.where(grant_in_state(where.state))
    elif not where.include_ended:
        query = query.where(grant_is_live())
    if where.integration:
        query = query.join(Integration, Integration.id == Grant.integration_id).where(
            Integration.name == where.integration
        )
    if where.identity:
        query = query.join(Identity, Identity.id == Grant.identity_id).where(
            func.lower(Identity.email) == where.identity.strip().lower()
        )
    if where.resource_prefix:
        query = query.where(Grant.resource_path.startswith(where.resource_prefix, autoescape=True))
    return page_of(session, query, limit, offset)


# Inventory --------------------------------------------------------------------------------------


def flow_specs(session: Session) -> list[dict[str, Any]]:
    return [_spec(row) for row in session.scalars(select(AccessFlow).order_by(AccessFlow.name))]


def flow_spec(session: Session, name: str) -> dict[str, Any]:
    row = session.scalar(select(AccessFlow).where(AccessFlow.name == name))
    if row is None:
        raise NotFound(f"no access flow {name!r}")
    return _spec(row)


def _spec(row: AccessFlow) -> dict[str, Any]:
    try:
        return FlowSpec.model_validate(row.spec).model_dump(mode="json")
    except ValueError:
        return dict(row.spec)  # stored by an older version; shown as it is rather than hidden
