"""Automatic flows: every identity matching a flow's requesters holds its targets while it matches.

`reconcile_automatic` computes what should be held now (people x covered resources x permissions, per
automatic flow) and makes the grant rows say so: missing ones are created (`request_id` NULL,
`flow_name` set), ones no longer due are ended with the reason, and the rest have their lease renewed.
The worker then does the target work through the usual desired/actual path. An automatic grant has an
end time like any other (the flow's `max_duration`, renewed while it stays due), so nothing outlives
its lease even if the worker stops renewing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from sluice.domain.flows import FlowSpec, Trigger
from sluice.domain.lifecycle import closed_reason
from sluice.domain.people import Person, miss
from sluice.domain.policy import ResourceRef, covers, is_requester
from sluice.domain.states import Actual, Desired, held_in_target
from sluice.events.audit import Action, record
from sluice.services.grants.endings import end_grants
from sluice.services.requests.policy import load_flows
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.tags import resource_refs
from sluice.store.grant_states import grant_should_be_active
from sluice.store.locks import Duty, try_duty_lock
from sluice.store.people_queries import people_snapshot
from sluice.store.tables import Grant, Resource
from sluice.store.types import new_id

Key = tuple[str, str, str, str]  # flow, identity id, resource id, permission


@dataclass
class AutomaticOutcome:
    granted: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    renewed: int = 0
    skipped: bool = False  # another transaction was running the same pass

    def as_dict(self) -> dict[str, int]:
        return {
            "granted": len(self.granted),
            "revoked": len(self.revoked),
            "renewed": self.renewed,
            "skipped": int(self.skipped),
        }


def _covered(flow: FlowSpec, refs: list[tuple[Resource, ResourceRef]]) -> list[tuple[Resource, str]]:
    units = []
    for resource, ref in refs:
        for target in flow.targets:
            for permission in target.permissions:
                if covers(target, ref, permission):
                    units.append((resource, permission))
    return list(dict.fromkeys(units))


def _why_ended(flow: FlowSpec | None, person: Person | None, resource_due: bool) -> str:
    if flow is None:
        return "no longer eligible: the automatic flow was removed or is no longer automatic"
    if not flow.active:
        return f"no longer eligible: flow {flow.name} is switched off"
    if person is None or not person.active:
        return "no longer eligible: the identity is no longer active"
    if not is_requester(flow, person):
        misses = [miss(s, person) for s in flow.requesters]
        return "no longer eligible: " + (misses[0] if len(misses) == 1 else "none of: " + "; ".join(misses))
    if not resource_due:
        return f"no longer eligible: flow {flow.name} no longer covers the resource"
    return "no longer eligible"


def reconcile_automatic(
    session: Session, *, hub: ConnectorHub, now: datetime, flows: list[FlowSpec] | None = None
) -> AutomaticOutcome:
    """Make the automatic grant rows match what the automatic flows say is due now.

    It reads the live automatic grants and then inserts the missing ones: two transactions doing this
    at once would each miss the other's uncommitted rows and create every unit twice (a second live
    grant, a second login role). So it runs under the people-duty lock (`store/locks.py`); the worker
    takes that lock first, and a caller that does not hold it gets it here or, when another transaction
    is running the same pass, does nothing (`skipped`). On SQLite the single writer serializes."""
    outcome = AutomaticOutcome()
    if not try_duty_lock(session, Duty.PEOPLE):
        outcome.skipped = True
        return outcome
    flows = load_flows(session) if flows is None else flows
    automatic = {f.name: f for f in flows if f.trigger == Trigger.AUTOMATIC}
    live = _live_automatic_grants(session)
    if not automatic and not live:
        return outcome
    people = people_snapshot(session, now)
    due, due_resources = _due_units(session, automatic, people)
    existing: dict[Key, Grant] = {}
    ending: dict[str, list[Grant]] = defaultdict(list)
    for grant in live:
        key = (grant.flow_name or "", grant.identity_id, grant.resource_id or "", grant.permission)
        if key in existing:
            ending[f"no longer needed: a duplicate of automatic grant {existing[key].id}"].append(grant)
        elif key in due:
            existing[key] = grant
        else:
            reason = _why_ended(
                automatic.get(key[0]), people.get(grant.identity_id), key[2] in due_resources[key[0]]
            )
            ending[reason].append(grant)
    for reason, grants in ending.items():
        ended = end_grants(
            session, grants, now=now, actor="sluice", action=Action.GRANT_NO_LONGER_ELIGIBLE, reason=reason
        )
        outcome.revoked += [g.id for g in ended]
    # A closed integration (disabled, retiring) gets no new grant and renews none: what it has runs out.
    outcome.renewed = sum(
        _renew(grant, automatic[key[0]], now) for key, grant in existing.items() if _open(due[key][1])
    )
    for key, (flow, resource) in due.items():
        if key not in existing and _open(resource):
            outcome.granted.append(_create(session, hub, flow, key, resource, people[key[1]], now))
    return outcome


def _open(resource: Resource) -> bool:
    row = resource.integration
    return closed_reason(row.name, disabled=row.disabled, lifecycle=row.lifecycle) is None


def _live_automatic_grants(session: Session) -> list[Grant]:
    """Every live automatic grant, locked and read as committed now; an established one first, so that
    of two rows for one unit (left by an older version) the one already in the target is kept.

    The lock waits rather than skipping: a row another transaction holds for a moment (a worker
    claiming or recording it, an admin revoking it) still exists, and skipping it would make its unit
    look missing and be granted a second time."""
    rows = session.scalars(
        select(Grant)
        .where(Grant.request_id.is_(None), Grant.flow_name.is_not(None), grant_should_be_active())
        .order_by(Grant.id)
        .options(selectinload(Grant.identity))
        .with_for_update(of=Grant)
        .execution_options(populate_existing=True)
    ).all()
    return sorted(rows, key=lambda g: (not held_in_target(g.actual), g.created_at, g.id))


def _due_units(
    session: Session, automatic: dict[str, FlowSpec], people: dict[str, Person]
) -> tuple[dict[Key, tuple[FlowSpec, Resource]], dict[str, set[str]]]:
    """Every unit due now (flow, identity, resource, permission), and the resources each flow covers."""
    resources = list(
        session.scalars(
            select(Resource).where(Resource.deleted_at.is_(None)).options(selectinload(Resource.integration))
        )
    )
    refs = list(zip(resources, resource_refs(session, resources), strict=True))
    due: dict[Key, tuple[FlowSpec, Resource]] = {}
    due_resources: dict[str, set[str]] = defaultdict(set)
    for flow in automatic.values():
        if not flow.active:
            continue
        members = [iid for iid, person in people.items() if is_requester(flow, person)]
        for resource, permission in _covered(flow, refs):
            due_resources[flow.name].add(resource.id)
            for identity_id in members:
                due[(flow.name, identity_id, resource.id, permission)] = (flow, resource)
    return due, due_resources


def _renew(grant: Grant, flow: FlowSpec, now: datetime) -> bool:
    """Past half its lease, a grant still due gets a new lease (and the target is told the new end)."""
    lease = flow.max_duration_delta
    if grant.ends_at is None or grant.ends_at - now >= lease / 2:
        return False
    grant.ends_at = now + lease
    grant.updated_at = now
    if held_in_target(grant.actual):
        grant.actual = Actual.UNKNOWN  # re-apply, so a target-side expiry moves too
    return True


def _create(
    session: Session,
    hub: ConnectorHub,
    flow: FlowSpec,
    key: Key,
    resource: Resource,
    person: Person,
    now: datetime,
) -> str:
    lease: timedelta = flow.max_duration_delta
    grant_id = new_id("gr")
    session.add(
        Grant(
            id=grant_id,
            request_id=None,
            flow_name=flow.name,
            identity_id=key[1],
            integration_id=resource.integration_id,
            resource_id=resource.id,
            resource_path=resource.path,
            resource_type=resource.type,
            permission=key[3],
            desired=Desired.ACTIVE,
            actual=Actual.NONE,
            duration_seconds=int(lease.total_seconds()),
            starts_at=now,
            ends_at=now + lease,
            principal=hub.for_integration(resource.integration).principal_for(grant_id, person.email),
            created_at=now,
            updated_at=now,
        )
    )
    record(
        session,
        now=now,
        actor="sluice",
        action=Action.AUTOMATIC_GRANTED,
        subject_type="grant",
        subject_id=grant_id,
        reason=f"automatic flow {flow.name}: {person.email} matches its requesters",
        flow=flow.name,
        grantee=person.email,
        resource=resource.path,
        permission=key[3],
    )
    return grant_id
