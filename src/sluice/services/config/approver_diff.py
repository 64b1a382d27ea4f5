"""Who may approve differently after a config change, per flow and resource.

Approvers are a function of a flow's approval policy, the directory, the requester (their manager,
separation of duties) and the resource (its owners), so they are compared where they decide something
today: the pending requests and the live grants (whose approvers may revoke and extend them) made
through a flow the change touches, through a flow that may name someone whose directory entry changes
as an approver, or by such a person. Each
side is asked of the one approver engine (`would_approve`, what explain names), once with the
document applied and once without."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sluice.domain.approval import ApprovalContext, approver_matches
from sluice.domain.flows import FlowSpec
from sluice.domain.people import Person
from sluice.services.config.affected import PolicyState, changed_flows
from sluice.services.requests.approvals import would_approve
from sluice.services.requests.approver_people import approvers_in
from sluice.store.grant_states import grant_is_open
from sluice.store.tables import AccessRequest, Grant, Identity


@dataclass(frozen=True)
class Decided:
    """One (flow, requester, resource) that a pending request or a live grant stands on."""

    flow: str
    requester_id: str
    resource_id: str
    resource: str


@dataclass
class ApproverChange:
    flow: str
    resource: str
    requester: str
    newly: list[str] = field(default_factory=list)
    no_longer: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "flow": self.flow,
            "resource": self.resource,
            "requester": self.requester,
            "newly": self.newly,
            "no_longer": self.no_longer,
        }


def _may_name(flow: FlowSpec, person: Person) -> bool:
    """Could `person` be one of the flow's approvers for some request? Approvers that depend on the
    request (the requester's manager, resource and integration owners) count as yes."""
    policy = flow.approval_policy
    if policy is None or not person.active:
        return False
    ctx = ApprovalContext(requester=person)
    return any(
        a.manager or a.resource_owner or a.integration_owner or approver_matches(a, person, ctx)
        for a in approvers_in(policy.tiers())
    )


def flows_to_compare(before: PolicyState, after: PolicyState) -> tuple[set[str], set[str]]:
    """(flow names, requester ids): the flows the change touches, those that may name someone whose
    directory entry changes as an approver, and the people whose entry changes (their manager and
    separation of duties decide who approves what they ask)."""
    moved = {i for i in set(before.people) | set(after.people) if before.people.get(i) != after.people.get(i)}
    flows = set(changed_flows(before, after))
    for state in (before, after):
        for flow in state.flows.values():
            if flow.name not in flows and any(
                _may_name(flow, state.people[i]) for i in moved if i in state.people
            ):
                flows.add(flow.name)
    return flows, moved


def decided_under(session: Session, before: PolicyState, after: PolicyState) -> list[Decided]:
    """What the change's approver comparison covers (see the module docstring)."""
    flows, requesters = flows_to_compare(before, after)
    if not flows and not requesters:
        return []
    query = (
        select(AccessRequest.flow_name, AccessRequest.requester_id, Grant.resource_id, Grant.resource_path)
        .join(Grant, Grant.request_id == AccessRequest.id)
        .where(
            grant_is_open(),  # a live grant, or one its pending request would make
            Grant.resource_id.is_not(None),
            or_(
                AccessRequest.flow_name.in_(sorted(flows)), AccessRequest.requester_id.in_(sorted(requesters))
            ),
        )
        .distinct()
    )
    found = [
        Decided(flow, requester, resource_id or "", path)
        for flow, requester, resource_id, path in session.execute(query)
    ]
    return sorted(found, key=lambda d: (d.flow, d.resource, d.requester_id))


def approvers_of(
    session: Session, flows: dict[str, FlowSpec], decided: list[Decided], now: datetime
) -> dict[Decided, set[str]]:
    """Who may approve each of `decided` under `flows` and the directory as the store holds it now."""
    ids = sorted({d.requester_id for d in decided})
    requesters = {i.id: i for i in session.scalars(select(Identity).where(Identity.id.in_(ids)))}
    found: dict[Decided, set[str]] = {}
    for item in decided:
        flow, requester = flows.get(item.flow), requesters.get(item.requester_id)
        if flow is None or requester is None:
            found[item] = set()
            continue
        named = would_approve(session, [flow], requester=requester, resource_id=item.resource_id, now=now)
        found[item] = set(named.get(flow.name, []))
    return found


def approver_changes(
    session: Session, before: dict[Decided, set[str]], after: dict[Decided, set[str]]
) -> list[ApproverChange]:
    ids = sorted({d.requester_id for d in before})
    rows = session.execute(select(Identity.id, Identity.email).where(Identity.id.in_(ids)))
    email_of = {identity_id: email for identity_id, email in rows}
    changes = [
        ApproverChange(
            flow=item.flow,
            resource=item.resource,
            requester=email_of.get(item.requester_id, item.requester_id),
            newly=sorted(after.get(item, set()) - was),
            no_longer=sorted(was - after.get(item, set())),
        )
        for item, was in before.items()
        if was != after.get(item, set())
    ]
    return sorted(changes, key=lambda c: (c.flow, c.resource, c.requester))
