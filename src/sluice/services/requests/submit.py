"""Submitting a request: checked against the flows now, one grant row per access unit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session, joinedload

from sluice.connectors.registry import connector_class
from sluice.domain.durations import format_duration
from sluice.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from sluice.domain.lifecycle import refuse_closed
from sluice.domain.policy import flow_for_units, reads_tags
from sluice.domain.states import Actual, Desired, RequestStatus
from sluice.events.audit import Action, record
from sluice.services.grants.endings import activate_request_grants
from sluice.services.requests import break_glass as glass
from sluice.services.requests.approvals import refuse_without_approver
from sluice.services.requests.break_glass import BreakGlassAsk
from sluice.services.requests.policy import load_flows, requesting_needs_shifts
from sluice.services.requests.rules import (
    capped_duration,
    checked_start,
    explain_choice,
    refuse_no_flow,
    refuse_too_long,
    refuse_unusable,
    usable_flows,
)
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.tags import resource_refs
from sluice.store.grant_states import grant_is_live
from sluice.store.queries import person_of
from sluice.store.tables import AccessRequest, Grant, Identity, Resource
from sluice.store.types import new_id

MAX_UNITS_PER_REQUEST = 200
MAX_REASON_LENGTH = 2000


@dataclass(frozen=True)
class UnitAsked:
    resource: str  # path
    permission: str


# The submit path's query is built once, with its values bound at execution: building a statement
# costs SQLAlchemy about as much time as running it. It reads the live resources at the paths asked
# for, with their integrations and the live grants the grantee holds on each (one row per such grant,
# or one with no grant): one round trip for what the checks below need of the store.
_LIVE_RESOURCES_AND_HELD = (
    select(Resource, Grant.permission, Grant.id)
    .options(joinedload(Resource.integration))
    .outerjoin(
        Grant,
        and_(
            Grant.resource_id == Resource.id,
            Grant.identity_id == bindparam("identity_id"),
            grant_is_live(),
        ),
    )
    .where(Resource.path.in_(bindparam("paths", expanding=True)), Resource.deleted_at.is_(None))
)


@dataclass
class _Found:
    resources: dict[str, Resource]  # by path
    held: dict[tuple[str, str], str]  # (resource id, permission) -> a live grant of the grantee's


def _resources_and_held(session: Session, grantee: Identity, paths: list[str]) -> _Found:
    """The live resources at these paths, with their integrations, and the live grants the grantee
    already has on them, in one query."""
    found = _Found({}, {})
    rows = session.execute(_LIVE_RESOURCES_AND_HELD, {"paths": sorted(set(paths)), "identity_id": grantee.id})
    for resource, permission, grant_id in rows:
        found.resources[resource.path] = resource
        if grant_id is not None:
            found.held.setdefault((resource.id, permission), grant_id)
    return found


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
    break_glass: BreakGlassAsk | None = None,
) -> AccessRequest:
    if not units:
        raise InvalidInput("name at least one resource to request")
    if len(units) > MAX_UNITS_PER_REQUEST:
        raise InvalidInput(f"a request may hold at most {MAX_UNITS_PER_REQUEST} access units")
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"the reason may be at most {MAX_REASON_LENGTH} characters")
    if len(set(units)) != len(units):
        raise InvalidInput("the same resource and permission are named twice")
    flows = load_flows(session)
    on_call = requesting_needs_shifts(flows)
    person = person_of(session, requester, now, on_call=on_call)
    if not person.active:
        raise NotAllowed(f"{requester.email} is not active")
    grantee = grantee or requester
    start = checked_start(starts_at, now)

    found = _resources_and_held(session, grantee, [unit.resource for unit in units])
    resolved: list[tuple[Resource, str]] = []
    for unit in units:
        resource = found.resources.get(unit.resource)
        if resource is None:
            raise NotFound(f"no resource {unit.resource!r}; `sluice inventory list` shows what exists")
        integration = resource.integration
        refuse_closed(integration.name, disabled=integration.disabled, lifecycle=integration.lifecycle)
        allowed = connector_class(resource.integration.kind).permissions.get(resource.type, ())
        if unit.permission not in allowed:
            raise InvalidInput(
                f"{unit.permission!r} cannot be granted on a {resource.type}; "
                f"choose one of: {', '.join(allowed)}"
            )
        resolved.append((resource, unit.permission))

    if flow_name is not None:
        flows = [f for f in flows if f.name == flow_name]
        if not flows:
            raise NotFound(f"no access flow named {flow_name!r}")
    grantee_person = (
        person if grantee.id == requester.id else person_of(session, grantee, now, on_call=on_call)
    )
    flows, unusable = usable_flows(flows, requester=person, grantee=grantee_person, start=start or now)
    refuse_unusable(flows, unusable, grantee_person, person)
    if break_glass is not None:
        flows = glass.break_glass_flows(flows, person, flow_name)
    # The resources' tags are read only when some flow that may carry the request selects by tag.
    refs = list(
        zip(
            resource_refs(session, [r for r, _ in resolved], with_tags=reads_tags(flows)),
            [p for _, p in resolved],
            strict=True,
        )
    )
    flow = flow_for_units(flows, person, refs)
    if flow is None:
        refuse_no_flow(flows, person, refs)
    refuse_too_long(flow, duration, break_glass=break_glass is not None)
    if break_glass is not None:
        glass.check_break_glass(session, flow, break_glass, requester, grantee, start, duration)
        reason = reason if reason.strip() else break_glass.reason
    if flow.justification_required and not reason.strip():
        raise InvalidInput(f"flow {flow.name!r} needs a reason: say why you need this access")
    duration = capped_duration(flow, start or now, duration)

    for resource, permission in resolved:
        duplicate = found.held.get((resource.id, permission))
        if duplicate:
            raise Conflict(
                f"you already hold or have asked for {permission} on {resource.path} (grant {duplicate})"
            )

    refuse_without_approver(
        session, flow, requester=requester, grantee=grantee, resource_ids=[r.id for r, _ in resolved], now=now
    )

    # The request, its grants and their audit events are written together, in one flush at the end.
    # The relationships are set from the objects in hand, so reading the new request back (its
    # requester, grants, approvals) needs no query.
    request = AccessRequest(
        id=new_id("req"),
        requester_id=requester.id,
        requester=requester,
        flow_name=flow.name,
        reason=reason.strip(),
        duration_seconds=int(duration.total_seconds()),
        status=RequestStatus.PENDING,
        created_at=now,
        pending_until=now + flow.pending_timeout_delta,
        starts_at=start,
        approvals=[],
    )
    grants = []
    for resource, permission in resolved:
        grant_id = new_id("gr")
        grants.append(
            Grant(
                id=grant_id,
                request_id=request.id,
                identity_id=grantee.id,
                identity=grantee,
                integration_id=resource.integration_id,
                integration=resource.integration,
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
    request.grants = sorted(grants, key=lambda g: g.id)  # the relationship's order, as when loaded
    session.add(request)
    # A break-glass request is made and approved in one step: one `request.break_glass` event says both.
    marks = {} if break_glass is None else {"break_glass": True, "incident": break_glass.incident.strip()}
    record(
        session,
        now=now,
        actor=requester.email,
        action=Action.REQUEST_CREATED if break_glass is None else Action.REQUEST_BREAK_GLASS,
        subject_type="request",
        subject_id=request.id,
        reason=request.reason if break_glass is None else break_glass.reason.strip(),
        **marks,
        requester=requester.email,
        flow=flow.name,
        resources=[r.path for r, _ in resolved],
        permissions=sorted({p for _, p in resolved}),
        duration=format_duration(duration),
        grantee_of=grantee.email if grantee.id != requester.id else None,
        choice=explain_choice(flow, flows, flow_name is not None),
        starts_at=start.isoformat() if start else None,
    )
    if break_glass is not None:
        glass.open_break_glass(session, request, break_glass, now=now)
    elif flow.auto_approve:
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
    session.flush()
    return request
