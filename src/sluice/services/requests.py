"""Submitting a request: checked against the flows now, one grant row per access unit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from sluice.connectors.registry import connector_class
from sluice.domain.durations import format_duration
from sluice.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from sluice.domain.flows import FlowSpec
from sluice.domain.policy import Person, ResourceRef, evaluate, flow_for_units
from sluice.domain.states import Actual, Desired, RequestStatus
from sluice.events.audit import Action, record
from sluice.services.connector_hub import ConnectorHub
from sluice.services.grants import activate_request_grants
from sluice.services.policy import load_flows
from sluice.services.request_rules import (
    capped_duration,
    checked_start,
    explain_choice,
    refuse_unusable,
    usable_flows,
)
from sluice.services.tags import resource_refs
from sluice.store.queries import grant_is_live, person_of
from sluice.store.tables import AccessRequest, Grant, Identity, Resource
from sluice.store.types import new_id

MAX_UNITS_PER_REQUEST = 200
MAX_REASON_LENGTH = 2000


@dataclass(frozen=True)
class UnitAsked:
    resource: str  # path
    permission: str


def _resource(session: Session, path: str) -> Resource:
    row = session.scalar(select(Resource).where(Resource.path == path, Resource.deleted_at.is_(None)))
    if row is None:
        raise NotFound(f"no resource {path!r}; `sluice inventory list` shows what exists")
    return row


def _refusal(flows: list[FlowSpec], person: Person, ref: ResourceRef, permission: str) -> str:
    if not flows:
        return "no access flow exists yet"
    reasons = [f"{v.flow}: {v.reason}" for v in (evaluate(f, person, ref, permission) for f in flows)]
    return "; ".join(reasons)


def submit_request(
    session: Session,
    *,
    hub: ConnectorHub,
    requester: Identity,
    units: list[UnitAsked],
    duration: timedelta,
    reason: str,
    now: datetime,
    flow_name: str | None = None,
    starts_at: datetime | None = None,
    grantee: Identity | None = None,
) -> AccessRequest:
    if not units:
        raise InvalidInput("name at least one resource to request")
    if len(units) > MAX_UNITS_PER_REQUEST:
        raise InvalidInput(f"a request may hold at most {MAX_UNITS_PER_REQUEST} access units")
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"the reason may be at most {MAX_REASON_LENGTH} characters")
    if len(set(units)) != len(units):
        raise InvalidInput("the same resource and permission are named twice")
    person = person_of(session, requester, now)
    if not person.active:
        raise NotAllowed(f"{requester.email} is not active")
    grantee = grantee or requester
    start = checked_start(starts_at, now)

    resolved: list[tuple[Resource, str]] = []
    for unit in units:
        resource = _resource(session, unit.resource)
        allowed = connector_class(resource.integration.kind).permissions.get(resource.type, ())
        if unit.permission not in allowed:
            raise InvalidInput(
                f"{unit.permission!r} cannot be granted on a {resource.type}; "
                f"choose one of: {', '.join(allowed)}"
            )
        resolved.append((resource, unit.permission))
    refs = list(zip(resource_refs(session, [r for r, _ in resolved]), [p for _, p in resolved], strict=True))

    flows = load_flows(session)
    if flow_name is not None:
        flows = [f for f in flows if f.name == flow_name]
        if not flows:
            raise NotFound(f"no access flow named {flow_name!r}")
    grantee_person = person if grantee.id == requester.id else person_of(session, grantee, now)
    flows, unusable = usable_flows(flows, requester=person, grantee=grantee_person, start=start or now)
    refuse_unusable(flows, unusable, grantee_person, person)
    flow = flow_for_units(flows, person, refs)
    if flow is None:
        for ref, permission in refs:
            if not any(evaluate(f, person, ref, permission).allowed for f in flows):
                raise NotAllowed(
                    f"no access flow lets {person.email} request {permission} on {ref.path}",
                    reasons=_refusal(flows, person, ref, permission),
                )
        raise NotAllowed("no single access flow allows every unit of this request; request them separately")
    if duration > flow.max_duration_delta:
        raise InvalidInput(
            f"duration {format_duration(duration)} is longer than flow {flow.name!r} allows "
            f"({flow.max_duration}); ask for {flow.max_duration} or less"
        )
    if flow.justification_required and not reason.strip():
        raise InvalidInput(f"flow {flow.name!r} needs a reason: say why you need this access")
    duration = capped_duration(flow, start or now, duration)

    for resource, permission in resolved:
        duplicate = session.scalar(
            select(Grant.id).where(
                and_(
                    Grant.identity_id == grantee.id,
                    Grant.resource_id == resource.id,
                    Grant.permission == permission,
                    grant_is_live(),
                )
            )
        )
        if duplicate:
            raise Conflict(
                f"you already hold or have asked for {permission} on {resource.path} (grant {duplicate})"
            )

    request = AccessRequest(
        id=new_id("req"),
        requester_id=requester.id,
        flow_name=flow.name,
        reason=reason.strip(),
        duration_seconds=int(duration.total_seconds()),
        status=RequestStatus.PENDING,
        created_at=now,
        pending_until=now + flow.pending_timeout_delta,
        starts_at=start,
    )
    session.add(request)
    session.flush()
    for resource, permission in resolved:
        grant_id = new_id("gr")
        session.add(
            Grant(
                id=grant_id,
                request_id=request.id,
                identity_id=grantee.id,
                integration_id=resource.integration_id,
                resource_id=resource.id,
                resource_path=resource.path,
                resource_type=resource.type,
                permission=permission,
                desired=Desired.PENDING,
                actual=Actual.NONE,
                duration_seconds=request.duration_seconds,
                principal=hub.for_integration(resource.integration).principal_for(grant_id, grantee.email),
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()
    record(
        session,
        now=now,
        actor=requester.email,
        action=Action.REQUEST_CREATED,
        subject_type="request",
        subject_id=request.id,
        reason=request.reason,
        requester=requester.email,
        flow=flow.name,
        resources=[r.path for r, _ in resolved],
        permissions=sorted({p for _, p in resolved}),
        duration=format_duration(duration),
        grantee_of=grantee.email if grantee.id != requester.id else None,
        choice=explain_choice(flow, flows, flow_name is not None),
        starts_at=start.isoformat() if start else None,
    )
    if flow.auto_approve:
        request.status = RequestStatus.APPROVED
        request.decided_at = now
        request.decided_by = "sluice"
        request.decision_reason = f"flow {flow.name} needs no approval"
        request.pending_until = None
        record(
            session,
            now=now,
            actor="sluice",
            action=Action.REQUEST_APPROVED,
            subject_type="request",
            subject_id=request.id,
            reason=request.decision_reason,
            flow=flow.name,
        )
        activate_request_grants(session, request, now)
    return request
