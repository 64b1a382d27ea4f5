"""Explain: may this person request this permission on this resource, and why (not)?

For every flow: whether it allows the access unit, and if not, the first condition that failed (the
flow is off, the person is not a requester, wrong integration or type, a tag is missing, excluded by
an exclusion...), in words. For the allowing flows, who would approve. The verdicts come from the
same evaluator that checks requests, so an explanation never disagrees with a submission.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from sluice.connectors.registry import connector_class
from sluice.domain.errors import NotFound
from sluice.domain.policy import ResourceRef, evaluate, flow_for_units
from sluice.services.requests.approvals import would_approve
from sluice.services.targeting.bundles import current_flows
from sluice.services.targeting.reads import resource_by_ref
from sluice.services.targeting.tags import resource_refs
from sluice.store.queries import identity_by_email, person_of


@dataclass(frozen=True)
class FlowVerdict:
    flow: str
    allowed: bool
    reason: str
    max_duration: str
    approval_required: bool
    approvers: list[str]


@dataclass(frozen=True)
class Explanation:
    identity: str
    resource: ResourceRef
    permission: str
    allowed: bool
    summary: str
    chosen_flow: str | None
    flows: list[FlowVerdict]


def explain(session: Session, *, email: str, resource: str, permission: str, now: datetime) -> Explanation:
    identity = identity_by_email(session, email)
    if identity is None:
        raise NotFound(f"no identity {email!r}")
    row = resource_by_ref(session, resource)
    if row.deleted_at is not None:
        raise NotFound(f"resource {row.path!r} no longer exists in its target")
    ref = resource_refs(session, [row])[0]
    person = person_of(session, identity, now)
    flows = current_flows(session)
    granted = connector_class(row.integration.kind).permissions.get(row.type, ())
    judged = [(flow, evaluate(flow, person, ref, permission)) for flow in flows]
    allowing = [flow for flow, verdict in judged if verdict.allowed]
    approvers = would_approve(session, allowing, requester=identity, resource_id=row.id, now=now)
    verdicts = [
        FlowVerdict(
            flow=flow.name,
            allowed=verdict.allowed,
            reason=verdict.reason,
            max_duration=flow.max_duration,
            approval_required=not flow.auto_approve,
            approvers=approvers.get(flow.name, []),
        )
        for flow, verdict in judged
    ]
    chosen = flow_for_units(allowing, person, [(ref, permission)]) if allowing else None
    if permission not in granted:
        summary = (
            f"{permission!r} cannot be granted on a {row.type}; permissions: {', '.join(granted) or 'none'}"
        )
        allowed = False
    elif chosen is None:
        summary = (
            f"no access flow lets {identity.email} request {permission} on {row.path}"
            if flows
            else "no access flow exists yet"
        )
        allowed = False
    else:
        summary = f"{identity.email} may request {permission} on {row.path} through flow {chosen.name}"
        allowed = True
    verdicts.sort(key=lambda v: (not v.allowed, v.flow))
    return Explanation(
        identity=identity.email,
        resource=ref,
        permission=permission,
        allowed=allowed,
        summary=summary,
        chosen_flow=chosen.name if chosen and allowed else None,
        flows=verdicts,
    )
